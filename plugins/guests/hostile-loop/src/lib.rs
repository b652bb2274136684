//! Test plugin: a decoder that never returns (the host's deadline must end the call).

wit_bindgen::generate!({
    world: "decoder-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::decoder::{DecodeContext, Guest};
use hotspot::plugin::types::Capture;

struct Plugin;

impl Guest for Plugin {
    fn decode(payload: Vec<u8>, _context: DecodeContext) -> Result<Capture, String> {
        let mut state = payload.len() as u64;
        loop {
            state = std::hint::black_box(state.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export!(Plugin);
