//! Fuzzes the INT-I XML readers: any input gives a package / response or a typed error, never a panic.
//!
//! Run: `cd device-protocols/fuzz && cargo +nightly fuzz run int_i`.
#![no_main]

use hotspot_device_protocols::int_i::{parse_package, parse_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_package(data);
    let _ = parse_response(data);
});
