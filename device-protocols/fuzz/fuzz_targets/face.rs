//! Fuzzes the ISO/IEC 19794-5 face record reader: any input gives a record or a typed error, never a panic; a
//! record that reads writes back to the same bytes.
//!
//! Run: `cd device-protocols/fuzz && cargo +nightly fuzz run face`.
#![no_main]

use hotspot_device_protocols::face::{encode_face_record, parse_face_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = parse_face_record(data) {
        assert_eq!(encode_face_record(&record).ok().as_deref(), Some(data));
    }
});
