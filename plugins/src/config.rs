//! Host configuration: code generator, limits per call, compile cache.

use std::path::PathBuf;
use std::time::Duration;

/// How plugin code is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Cranelift compiles to native code (fastest). Needs writable+executable memory: incompatible with systemd's
    /// `MemoryDenyWriteExecute=yes`.
    Cranelift,
    /// Cranelift compiles to Pulley bytecode, run by wasmtime's portable interpreter (target `pulley64`). Slower,
    /// but needs no executable memory.
    Pulley,
}

impl Backend {
    /// The name used in configuration files and cache entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cranelift => "cranelift",
            Self::Pulley => "pulley",
        }
    }
}

/// Limits and options shared by every plugin of one [`crate::PluginHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostConfig {
    /// Native code or interpreter.
    pub backend: Backend,
    /// Total linear memory a plugin instance may have, in bytes (checked on every `memory.grow`, including the
    /// initial memories). A refused growth fails the call with [`crate::CallError::MemoryLimit`].
    pub max_memory_bytes: usize,
    /// Wall-clock budget of one call, instantiation included. Enforced with epoch interruption: the call traps
    /// between `call_deadline` and `call_deadline + epoch_tick` after it started.
    pub call_deadline: Duration,
    /// Period of the host's epoch ticker thread (the only clock the host uses, and only for deadlines).
    pub epoch_tick: Duration,
    /// Optional deterministic instruction budget per call (wasmtime fuel); `None` leaves fuel metering off (it
    /// costs some speed). The deadline applies either way.
    pub fuel_per_call: Option<u64>,
    /// Bytes of stdout+stderr a call may write (kept for error messages). Writing more traps the call.
    pub max_log_bytes: usize,
    /// Largest component accepted at load, in bytes.
    pub max_component_bytes: usize,
    /// Folder for compiled artifacts (created if missing; keep it writable by the service only). `None`: compile
    /// at every load.
    pub cache_dir: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Cranelift,
            max_memory_bytes: 64 << 20,
            call_deadline: Duration::from_millis(500),
            epoch_tick: Duration::from_millis(10),
            fuel_per_call: None,
            max_log_bytes: 16 << 10,
            max_component_bytes: 16 << 20,
            cache_dir: None,
        }
    }
}

impl HostConfig {
    /// The default limits with another backend.
    pub fn with_backend(backend: Backend) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }
}
