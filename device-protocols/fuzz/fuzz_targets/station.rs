//! Fuzz the station-protocol capture decoders: JSON and raw ANSI/NIST-ITL payloads on a captures topic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hotspot_device_protocols::station::decode_capture(data);
    let _ = hotspot_device_protocols::station::parse_station_topic(&String::from_utf8_lossy(data));
    let _ = hotspot_device_protocols::ansi_nist::capture_from_transaction(
        "fuzz",
        data,
        time::OffsetDateTime::UNIX_EPOCH,
    );
});
