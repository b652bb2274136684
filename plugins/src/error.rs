//! Typed errors: host setup, plugin install, plugin calls.

use std::time::Duration;

/// The host could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The configuration is unusable (e.g. a zero tick, a backend this build cannot run).
    #[error("plugin host configuration: {0}")]
    Config(String),
    /// The epoch ticker thread could not be started.
    #[error("cannot start the plugin deadline ticker: {0}")]
    Ticker(#[source] std::io::Error),
}

/// A plugin was refused at load or install. Nothing changed: the slot keeps what it had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A metadata field is malformed.
    #[error("plugin metadata field `{field}`: {reason}")]
    BadMetadata {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The plugin was built for a contract major version this host does not speak.
    #[error("plugin built for contract hotspot:plugin@{found}, this host supports {supported}")]
    WitVersion {
        /// The version found (metadata or component exports).
        found: String,
        /// What the host accepts, e.g. `1.x`.
        supported: String,
    },
    /// The component does not implement the expected world.
    #[error("plugin does not implement world `{expected}`: {found}")]
    WrongWorld {
        /// The world the caller asked for.
        expected: String,
        /// What was found instead.
        found: String,
    },
    /// The component is larger than the configured limit.
    #[error("plugin component is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid WebAssembly component (or not one wasmtime can compile).
    #[error("plugin is not a valid component: {0}")]
    Invalid(String),
    /// The component imports something the host does not grant (files, sockets, clocks, ...).
    #[error("plugin needs imports the host does not grant: {0}")]
    Imports(String),
    /// The component could not be instantiated within the limits (start code trapped, too much memory, ...).
    #[error("plugin cannot be instantiated: {0}")]
    Instantiate(String),
    /// A self-test case gave another answer than the expected one (or none).
    #[error("plugin {plugin} failed self-test case {case}: {reason}")]
    SelfTestFailed {
        /// `name@version`.
        plugin: String,
        /// Index of the failing case.
        case: usize,
        /// What happened.
        reason: String,
    },
    /// The caller gave no self-test case; a slot never installs an untested plugin.
    #[error("plugin {0} comes without a self-test case")]
    NoSelfTest(String),
    /// The version is not newer than the installed one.
    #[error("plugin {name} version {offered} is not newer than the installed {installed}")]
    NotNewer {
        /// Plugin name.
        name: String,
        /// Offered version.
        offered: String,
        /// Installed version.
        installed: String,
    },
    /// This exact plugin (version and bytes) was rolled back before on this slot.
    #[error("plugin {0} was rolled back before and is refused")]
    RolledBackBefore(String),
}

/// One plugin call failed. Only this call is affected: the host, other plugins and later calls of the same
/// plugin are not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The plugin answered with a refusal (e.g. a decoder naming a bad field). Not a fault of the plugin.
    #[error("refused by plugin: {0}")]
    Refused(String),
    /// The host refused the input before calling (e.g. too large). Not a fault of the plugin.
    #[error("input not passed to the plugin: {0}")]
    InvalidInput(String),
    /// The call ran past its deadline and was interrupted.
    #[error("plugin call interrupted after its deadline of {} ms", .limit.as_millis())]
    Deadline {
        /// The configured deadline.
        limit: Duration,
    },
    /// The call used up its fuel.
    #[error("plugin call ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The configured fuel per call.
        fuel: u64,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error("plugin call exceeded the memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The configured limit.
        limit_bytes: usize,
    },
    /// The plugin trapped (a Rust panic is an abort, hence a trap), or its instantiation failed.
    #[error("plugin trapped: {message}{}", if .log.is_empty() { String::new() } else { format!(" (plugin output: {})", .log) })]
    Trap {
        /// The trap or error, as wasmtime describes it.
        message: String,
        /// The end of what the plugin wrote to stdout/stderr (bounded).
        log: String,
    },
    /// The plugin answered something the contract forbids (e.g. finger position 11, a hit turned into a no-hit).
    #[error("plugin answer violates the contract: {0}")]
    InvalidOutput(String),
}

impl CallError {
    /// Whether the plugin is to blame (counted by a slot's health window): everything except
    /// [`CallError::Refused`] and [`CallError::InvalidInput`].
    pub fn is_fault(&self) -> bool {
        !matches!(self, Self::Refused(_) | Self::InvalidInput(_))
    }
}

/// A call through a [`crate::PluginSlot`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlotCallError {
    /// Nothing is installed in the slot.
    #[error("no plugin installed")]
    Empty,
    /// The installed plugin's call failed.
    #[error("plugin {plugin}: {error}")]
    Call {
        /// `name@version` of the plugin that was called.
        plugin: String,
        /// What happened.
        error: CallError,
    },
}
