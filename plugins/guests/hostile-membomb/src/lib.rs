//! Test plugin: a decoder that allocates (and touches) 16 MiB blocks until memory runs out (the host's memory
//! limit must refuse the growth and the call must fail alone).

wit_bindgen::generate!({
    world: "decoder-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::decoder::{DecodeContext, Guest};
use hotspot::plugin::types::Capture;

struct Plugin;

impl Guest for Plugin {
    fn decode(_payload: Vec<u8>, _context: DecodeContext) -> Result<Capture, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let block = vec![0xA5u8; 16 << 20];
            hoard.push(std::hint::black_box(block));
            if hoard.len() > 1 << 16 {
                return Err(format!(
                    "allocated {} blocks without hitting a limit",
                    hoard.len()
                ));
            }
        }
    }
}

export!(Plugin);
