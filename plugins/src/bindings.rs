//! Host bindings generated from `plugins/wit/plugin.wit` (world `host-view`: the three plugin interfaces, so that
//! all kinds share one set of generated types). Private: the public API speaks the station protocol's types.
#![allow(missing_docs, missing_debug_implementations, clippy::all)]

wasmtime::component::bindgen!({
    world: "host-view",
    path: "wit",
});

pub(crate) use exports::hotspot::plugin::{decoder, policy, quality};
pub(crate) use hotspot::plugin::types;
