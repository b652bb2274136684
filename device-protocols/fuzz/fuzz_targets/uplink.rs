//! Fuzz the uplink frame decoders with bytes as a peer could send them.
#![no_main]

use hotspot_device_protocols::uplink::{
    Announcement, MAX_FRAME_BYTES, Request, Response, decode_body, decode_frame,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame::<Request>(data, MAX_FRAME_BYTES);
    let _ = decode_frame::<Response>(data, MAX_FRAME_BYTES);
    let _ = decode_body::<Announcement>(data);
});
