//! Fuzzes the minutiae record readers: any input must give a record or a typed error, never a panic; and a record
//! that reads as ISO must write back to bytes that read as the same record.
//!
//! Run: `cd device-protocols/fuzz && cargo +nightly fuzz run template`.
#![no_main]

use hotspot_device_protocols::template::{
    encode_iso19794_2, parse_ansi378, parse_iso19794_2, parse_minutiae_record,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_ansi378(data);
    let _ = parse_minutiae_record(data);
    if let Ok(record) = parse_iso19794_2(data) {
        if let Ok(bytes) = encode_iso19794_2(&record) {
            assert_eq!(parse_iso19794_2(&bytes).ok(), Some(record));
        }
    }
});
