//! WebAssembly plugin host for Hotspot Edge: vendor payload decoders, capture quality checks and local policy,
//! as WebAssembly components implementing the WIT contract in `plugins/wit/plugin.wit` (`hotspot:plugin@1.0.0`).
//! `docs/plugins.md` is the guide (contract, example plugins, building them, benchmark).
//!
//! ```no_run
//! # fn demo(bundle_wasm: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use hotspot_plugins::*;
//! let host = PluginHost::new(HostConfig::default())?;
//! // The gateway checked the bundle's signature over these bytes before this line.
//! let wasm = VerifiedWasm::signature_checked_by_caller(bundle_wasm);
//! let plugin = host.load::<Decoder>(PluginMeta::new("acme-fs200", "1.0.0", "decoder-plugin"), wasm)?;
//! let slot = PluginSlot::<Decoder>::new(HealthPolicy::default());
//! # let self_tests = vec![];
//! slot.install(plugin, &self_tests)?; // refused unless every self-test case passes
//! # Ok(()) }
//! ```
//!
//! # Trust model
//! - **Component bytes** are trusted to be the publisher's only because the caller says so: this crate does not
//!   check signatures. The gateway verifies the signed bundle and wraps the bytes in [`VerifiedWasm`].
//! - **Plugin behaviour** is never trusted. Each call runs in a fresh instance with: a deadline
//!   ([`HostConfig::call_deadline`], epoch interruption; optional fuel), a memory limit on every `memory.grow`
//!   ([`HostConfig::max_memory_bytes`]), a bounded stdout/stderr buffer, and no ambient authority: the host links
//!   only `wasi:io`, `wasi:cli` (empty environment, no arguments, closed stdin) and `wasi:random`; no files, no
//!   sockets, no clocks. A plugin importing anything else is refused at load. A trap, a timeout or the memory limit
//!   fails that call only ([`CallError`]); the host, other plugins and later calls are unaffected.
//! - **Plugin answers** are checked against the contract before anyone sees them: a decoder's capture passes the
//!   station protocol's own validation (`station::decode_capture`), quality scores must name the capture's fingers
//!   and stay in 0..=100, a policy may never turn a hit into anything else; message sizes are bounded.
//! - **The compile cache** ([`HostConfig::cache_dir`]) holds wasmtime artifacts, which are native code: one is
//!   deserialized only for component bytes whose SHA-256 it was recorded for and when its own SHA-256 matches the
//!   record; otherwise the plugin is recompiled from the verified bytes. The folder must be writable by the service
//!   only (a SHA-256 detects corruption and mix-ups, not a forger who can write the folder).
//! - **Versions**: a plugin built for another major version of the contract, or not exporting the expected world,
//!   is refused at load ([`InstallError::WitVersion`], [`InstallError::WrongWorld`]).
//!
//! # Lifecycle
//! [`PluginHost::load`] compiles and checks a plugin; [`PluginSlot::install`] runs its self-test cases (carried by
//! the bundle manifest: sample inputs and expected answers) and swaps it in atomically, keeping the previous one;
//! [`PluginSlot::call`] counts faults over the last calls and rolls back to the previous plugin when most of them
//! fail ([`HealthPolicy`]). The only clock is the epoch ticker thread that drives deadlines: times a plugin needs
//! are parameters ([`DecodeInput::received_at`], [`PolicyInput::now`]).

mod bindings;
mod cache;
mod config;
mod error;
mod host;
mod kinds;
mod meta;
mod slot;

pub use cache::CompileOrigin;
pub use config::{Backend, HostConfig};
pub use error::{CallError, HostError, InstallError, SlotCallError};
pub use host::{Plugin, PluginHost};
pub use kinds::{
    Alert, AlertRoute, DecodeInput, Decoder, FingerScore, Kind, MAX_ALERTS, MAX_MESSAGE_CHARS,
    MAX_REASON_BYTES, MAX_WARNINGS, PluginKind, Policy, PolicyDecision, PolicyInput, Quality,
    QualityReport, QualityWarning, Severity,
};
pub use meta::{PluginMeta, VerifiedWasm, Version, WIT_PACKAGE, WIT_VERSION};
pub use slot::{Expected, HealthPolicy, PluginSlot, Rollback, SelfTest, SlotStatus};
