//! Fuzzes the ANSI/NIST-ITL reader: any input gives a transaction or a typed error, never a panic; a transaction
//! that reads writes back to bytes that read as the same transaction; capture extraction never panics.
//!
//! Run: `cd device-protocols/fuzz && cargo +nightly fuzz run ansi_nist`.
#![no_main]

use hotspot_device_protocols::ansi_nist::{capture_parts, encode, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tx, _warnings)) = parse(data) {
        let _ = capture_parts(&tx);
        let bytes = encode(&tx).expect("a transaction that was read can be written");
        let (again, _) = parse(&bytes).expect("what was written reads back");
        assert_eq!(again, tx);
    }
});
