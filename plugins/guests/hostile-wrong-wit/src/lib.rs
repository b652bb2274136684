//! Test plugin: a decoder built against `hotspot:plugin@2.0.0` (its own copy of a different contract in `wit/`);
//! the 1.x host must refuse it at install.

wit_bindgen::generate!({
    world: "decoder-plugin",
    path: "wit",
});

use exports::hotspot::plugin::decoder::Guest;

struct Plugin;

impl Guest for Plugin {
    fn decode(payload: Vec<u8>) -> Result<String, String> {
        String::from_utf8(payload).map_err(|e| e.to_string())
    }
}

export!(Plugin);
