//! WebAssembly plugin host for Hotspot Edge (decoders for new scanner models, quality checks, local policy).
//!
//! Not built yet: the wasmtime component host, the WIT contract in `plugins/wit/`, signature checks and hot swap
//! arrive with the plugin issue. The crate exists so the workspace has its final shape; it exports nothing, so
//! nothing can mistake it for a working host.
