//! Test plugin: a decoder that tries to read a host file. Reading files needs `wasi:filesystem`, which the host
//! does not link: it must refuse the plugin at load.

wit_bindgen::generate!({
    world: "decoder-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::decoder::{DecodeContext, Guest};
use hotspot::plugin::types::Capture;

struct Plugin;

impl Guest for Plugin {
    fn decode(_payload: Vec<u8>, _context: DecodeContext) -> Result<Capture, String> {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => Err(format!("read the host's /etc/passwd: {} bytes", text.len())),
            Err(e) => Err(format!("could not read /etc/passwd: {e}")),
        }
    }
}

export!(Plugin);
