//! The wasmtime host: engine, epoch ticker, the WASI subset granted, per-call stores with limits.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wasmtime::component::{
    Component, Instance, InstancePre, Linker, ResourceTable, types::ComponentItem,
};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{decoder, policy, quality};
use crate::cache::{self, CompileOrigin};
use crate::config::{Backend, HostConfig};
use crate::error::{CallError, HostError, InstallError};
use crate::kinds::{Kind, PluginKind};
use crate::meta::{PluginMeta, VerifiedWasm, Version, WIT_PACKAGE, WIT_VERSION};

/// Runs plugins: one wasmtime engine (backend, limits), the deadline ticker and the optional compile cache.
///
/// Cheap to share (`Arc` it); plugins loaded from it keep what they need alive on their own.
pub struct PluginHost {
    engine: Engine,
    linker: Arc<Linker<CallState>>,
    config: Arc<HostConfig>,
    ticker: Arc<Ticker>,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Builds the engine for `config.backend`, starts the epoch ticker thread.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        if config.epoch_tick.is_zero() || config.call_deadline.is_zero() {
            return Err(HostError::Config(
                "epoch_tick and call_deadline must be above zero".into(),
            ));
        }
        if config.max_memory_bytes == 0 {
            return Err(HostError::Config(
                "max_memory_bytes must be above zero".into(),
            ));
        }
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel_per_call.is_some())
            .parallel_compilation(true);
        if config.backend == Backend::Pulley {
            wasm.target("pulley64")
                .map_err(|e| HostError::Config(format!("pulley backend: {e}")))?;
        }
        let engine = Engine::new(&wasm).map_err(|e| HostError::Config(format!("{e:#}")))?;
        if config.backend == Backend::Cranelift {
            // Native code needs memory that turns executable after being written; say so now, at start-up, rather
            // than as a confusing failure of the first plugin load.
            wasmtime::Module::new(&engine, TINY_MODULE).map_err(|e| {
                HostError::Config(format!(
                    "the cranelift backend cannot run here ({e:#}); executable memory may be denied \
                     (systemd MemoryDenyWriteExecute=yes): use the pulley backend"
                ))
            })?;
        }
        let linker = granted_imports(&engine)
            .map_err(|e| HostError::Config(format!("linking the granted WASI subset: {e:#}")))?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick).map_err(HostError::Ticker)?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            config: Arc::new(config),
            ticker: Arc::new(ticker),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Compiles (or takes from the cache) a plugin whose bytes the caller has verified, checks that it implements
    /// `K`'s world at this host's contract major version and grants no more than the host gives, and instantiates
    /// it once to prove it starts within the limits.
    ///
    /// The result is callable at once; to run it as the active plugin of its kind, self-test and swap it in with
    /// [`crate::PluginSlot::install`].
    pub fn load<K: PluginKind>(
        &self,
        meta: PluginMeta,
        wasm: VerifiedWasm<'_>,
    ) -> Result<Plugin<K>, InstallError> {
        let version = meta.check(K::KIND.world())?;
        let bytes = wasm.bytes();
        if bytes.len() > self.config.max_component_bytes {
            return Err(InstallError::TooLarge {
                size: bytes.len(),
                limit: self.config.max_component_bytes,
            });
        }
        let compiled = cache::compile(&self.engine, &self.config, bytes)?;
        check_exports(&self.engine, &compiled.component, K::KIND)?;
        let pre = self
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| InstallError::Imports(format!("{e:#}")))?;
        let wrong_world = |e: wasmtime::Error| InstallError::WrongWorld {
            expected: K::KIND.world().to_owned(),
            found: format!("{e:#}"),
        };
        let indices = match K::KIND {
            Kind::Decoder => {
                ExportIndices::Decoder(decoder::GuestIndices::new(&pre).map_err(wrong_world)?)
            }
            Kind::Quality => {
                ExportIndices::Quality(quality::GuestIndices::new(&pre).map_err(wrong_world)?)
            }
            Kind::Policy => {
                ExportIndices::Policy(policy::GuestIndices::new(&pre).map_err(wrong_world)?)
            }
        };
        let plugin = Plugin {
            inner: Arc::new(Inner {
                meta,
                version,
                source_sha256: compiled.source_sha256,
                origin: compiled.origin,
                cache_warning: compiled.cache_warning,
                pre,
                indices,
                config: Arc::clone(&self.config),
                _ticker: Arc::clone(&self.ticker),
            }),
            _kind: PhantomData,
        };
        plugin.probe().map_err(|e| match e {
            // The typed lookup of the export functions checks their signatures against the contract.
            ProbeError::Types(msg) => InstallError::WrongWorld {
                expected: K::KIND.world().to_owned(),
                found: msg,
            },
            ProbeError::Instantiate(e) => InstallError::Instantiate(e.to_string()),
        })?;
        Ok(plugin)
    }
}

/// A core module with one empty function: compiling it publishes (a little) native code.
const TINY_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: one type, func () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: one body, no locals, `end`
];

/// Which contract exports a loaded plugin has (looked up once at load).
pub(crate) enum ExportIndices {
    Decoder(decoder::GuestIndices),
    Quality(quality::GuestIndices),
    Policy(policy::GuestIndices),
}

struct Inner {
    meta: PluginMeta,
    version: Version,
    source_sha256: [u8; 32],
    origin: CompileOrigin,
    cache_warning: Option<String>,
    pre: InstancePre<CallState>,
    indices: ExportIndices,
    config: Arc<HostConfig>,
    /// Keeps the deadline ticker running while any plugin of the host exists.
    _ticker: Arc<Ticker>,
}

/// A compiled, checked plugin of kind `K`. Every call runs in a fresh instance (fresh memory, fresh limits), so a
/// failed call leaves nothing behind. Cheap to clone; callable from many threads at once.
pub struct Plugin<K> {
    inner: Arc<Inner>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Plugin<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Plugin<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("meta", &self.inner.meta)
            .field("origin", &self.inner.origin)
            .finish_non_exhaustive()
    }
}

enum ProbeError {
    Instantiate(CallError),
    Types(String),
}

impl<K: PluginKind> Plugin<K> {
    /// Calls the plugin once under the host's limits.
    pub fn call(&self, input: &K::Input) -> Result<K::Output, CallError> {
        K::invoke(self, input)
    }

    /// The metadata it was loaded with.
    pub fn meta(&self) -> &PluginMeta {
        &self.inner.meta
    }

    /// Its parsed version.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// SHA-256 of the component bytes it was loaded from.
    pub fn source_sha256(&self) -> [u8; 32] {
        self.inner.source_sha256
    }

    /// Whether it was compiled now or taken from the cache.
    pub fn origin(&self) -> &CompileOrigin {
        &self.inner.origin
    }

    /// Why the compiled artifact could not be written to the cache, if that happened (the plugin works anyway).
    pub fn cache_warning(&self) -> Option<&str> {
        self.inner.cache_warning.as_deref()
    }

    /// Instantiates the plugin and resolves its exports without calling anything: the fixed cost every call pays
    /// first (for benchmarks and health checks).
    pub fn instantiate_only(&self) -> Result<(), CallError> {
        let indices = &self.inner.indices;
        self.run(|store, instance| match indices {
            ExportIndices::Decoder(ix) => ix.load(store, instance).map(drop),
            ExportIndices::Quality(ix) => ix.load(store, instance).map(drop),
            ExportIndices::Policy(ix) => ix.load(store, instance).map(drop),
        })
    }

    pub(crate) fn indices(&self) -> &ExportIndices {
        &self.inner.indices
    }

    /// Instantiates once and resolves the typed export functions.
    fn probe(&self) -> Result<(), ProbeError> {
        let config = &self.inner.config;
        let (mut store, _log) = new_store(&self.inner.pre, config);
        let instance = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| ProbeError::Instantiate(classify(e, &store, config, &_log)))?;
        let loaded = match &self.inner.indices {
            ExportIndices::Decoder(ix) => ix.load(&mut store, &instance).map(drop),
            ExportIndices::Quality(ix) => ix.load(&mut store, &instance).map(drop),
            ExportIndices::Policy(ix) => ix.load(&mut store, &instance).map(drop),
        };
        loaded.map_err(|e| ProbeError::Types(format!("{e:#}")))
    }

    /// Runs `f` in a fresh store and instance under the deadline, fuel and memory limits, turning every failure
    /// into a [`CallError`].
    pub(crate) fn run<R>(
        &self,
        f: impl FnOnce(&mut Store<CallState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let config = &self.inner.config;
        let (mut store, log) = new_store(&self.inner.pre, config);
        let result = self
            .inner
            .pre
            .instantiate(&mut store)
            .and_then(|instance| f(&mut store, &instance));
        result.map_err(|e| classify(e, &store, config, &log))
    }
}

/// Per-call store data: an empty WASI context and the memory accounting.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn new_store(
    pre: &InstancePre<CallState>,
    config: &HostConfig,
) -> (Store<CallState>, MemoryOutputPipe) {
    let log = MemoryOutputPipe::new(config.max_log_bytes);
    // No preopened directories, no environment, no arguments, closed stdin; stdout and stderr into one bounded
    // buffer. The linker does not even define files, sockets or clocks (see `granted_imports`).
    let wasi = WasiCtxBuilder::new()
        .stdout(log.clone())
        .stderr(log.clone())
        .build();
    let state = CallState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            limit: config.max_memory_bytes,
            used: 0,
            refused: false,
        },
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(deadline_ticks(config));
    store.epoch_deadline_trap();
    if let Some(fuel) = config.fuel_per_call {
        // Fuel is enabled on the engine exactly when `fuel_per_call` is set, so this cannot fail.
        let _ = store.set_fuel(fuel);
    }
    (store, log)
}

/// Ticks until the deadline: rounded up, plus one because the first tick may come at once.
fn deadline_ticks(config: &HostConfig) -> u64 {
    let tick = config.epoch_tick.as_nanos().max(1);
    let ticks = config.call_deadline.as_nanos().div_ceil(tick);
    u64::try_from(ticks)
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// Turns a wasmtime error of a call into the typed error.
fn classify(
    e: wasmtime::Error,
    store: &Store<CallState>,
    config: &HostConfig,
    log: &MemoryOutputPipe,
) -> CallError {
    if store.data().limiter.refused {
        return CallError::MemoryLimit {
            limit_bytes: config.max_memory_bytes,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline {
            limit: config.call_deadline,
        },
        Some(Trap::OutOfFuel) => CallError::OutOfFuel {
            fuel: config.fuel_per_call.unwrap_or(0),
        },
        _ => CallError::Trap {
            message: format!("{e:#}"),
            log: log_tail(log, 2048),
        },
    }
}

/// The last `max` bytes of what the plugin wrote, as text.
fn log_tail(log: &MemoryOutputPipe, max: usize) -> String {
    let bytes = log.contents();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

/// Total linear memory of one store, checked on every growth (initial memories included).
struct MemoryLimiter {
    limit: usize,
    used: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.used = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// The imports the host grants: `wasi:io` (streams for stdout/stderr), `wasi:cli` (empty environment, no
/// arguments, closed stdin, bounded stdout/stderr, exit) and `wasi:random`. Rust's `wasm32-wasip2` standard library
/// imports these. Not granted, so a plugin importing them is refused at load: `wasi:filesystem`, `wasi:sockets`,
/// and `wasi:clocks` (no hidden time source, and no sleeping inside host code where the deadline cannot reach).
fn granted_imports(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::p2::bindings::{cli, random, sync};
    use wasmtime_wasi::random::WasiRandom;

    struct HasIo;
    impl wasmtime::component::HasData for HasIo {
        type Data<'a> = &'a mut ResourceTable;
    }

    let mut linker = Linker::<CallState>::new(engine);
    let l = &mut linker;
    sync::io::error::add_to_linker::<CallState, HasIo>(l, |t| &mut t.table)?;
    sync::io::poll::add_to_linker::<CallState, HasIo>(l, |t| &mut t.table)?;
    sync::io::streams::add_to_linker::<CallState, HasIo>(l, |t| &mut t.table)?;
    cli::exit::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::environment::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(l, |t| t.cli())?;
    random::random::add_to_linker::<CallState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<CallState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<CallState, WasiRandom>(l, |t| t.wasi.random())?;
    Ok(linker)
}

impl CallState {
    fn cli(&mut self) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        wasmtime_wasi::cli::WasiCliCtxView {
            ctx: self.wasi.cli(),
            table: &mut self.table,
        }
    }
}

/// Checks the component's contract exports: the expected interface at this host's major version.
fn check_exports(engine: &Engine, component: &Component, kind: Kind) -> Result<(), InstallError> {
    let ty = component.component_type();
    let mut found = Vec::new();
    let mut other_major = None;
    let mut has_interface = false;
    let prefix = format!("{WIT_PACKAGE}/");
    for (name, item) in ty.exports(engine) {
        found.push(name.to_owned());
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let version = Version::parse(version);
        match version {
            Some(v) if v.major == WIT_VERSION.major => {
                if interface == kind.interface()
                    && matches!(item.ty, ComponentItem::ComponentInstance(_))
                {
                    has_interface = true;
                }
            }
            Some(v) => other_major = Some(v),
            None => {
                return Err(InstallError::WitVersion {
                    found: format!("an unversioned export {name:?}"),
                    supported: format!("{}.x", WIT_VERSION.major),
                });
            }
        }
    }
    if has_interface {
        return Ok(());
    }
    if let Some(v) = other_major {
        return Err(InstallError::WitVersion {
            found: v.to_string(),
            supported: format!("{}.x", WIT_VERSION.major),
        });
    }
    Err(InstallError::WrongWorld {
        expected: kind.world().to_owned(),
        found: if found.is_empty() {
            "the component exports nothing".into()
        } else {
            format!("it exports {}", found.join(", "))
        },
    })
}

/// Increments the engine's epoch every tick until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
