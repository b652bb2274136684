//! Test plugin: a decoder that panics (a Rust panic aborts the component: a trap for the host).

wit_bindgen::generate!({
    world: "decoder-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::decoder::{DecodeContext, Guest};
use hotspot::plugin::types::Capture;

struct Plugin;

impl Guest for Plugin {
    fn decode(payload: Vec<u8>, _context: DecodeContext) -> Result<Capture, String> {
        panic!("hostile-panic: refusing {} bytes", payload.len());
    }
}

export!(Plugin);
