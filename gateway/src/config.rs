//! Gateway configuration: TOML, unknown keys refused, every error reported at once.
//!
//! The keys, their units and defaults are documented in `docs/configuration.md`; this module is the one place that
//! defines them. [`Config::load`] parses and validates; `hotspot-gateway check-config` calls nothing else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[site]`
    pub site: SiteConfig,
    /// `[broker]`
    pub broker: BrokerConfig,
    /// `[uplink]`
    pub uplink: UplinkConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[console]`
    pub console: ConsoleConfig,
    /// `[retention]`
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[face]`: face matching (absent: faces are not compared, and results say so).
    #[serde(default)]
    pub face: Option<FaceConfig>,
    /// `[watchlist]`: who may sign watchlist and plugin bundles, and how old a watchlist may get.
    pub watchlist: WatchlistConfig,
    /// `[plugins]`: WebAssembly plugins (absent: plugin bundles are refused).
    #[serde(default)]
    pub plugins: Option<PluginsConfig>,
    /// `[metrics]`: Prometheus `/metrics`, plus `/healthz` and `/api/status` over plain HTTP.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[memory]`: when memory freed after answers is given back to the system.
    #[serde(default)]
    pub memory: MemoryConfig,
}

/// How plugins are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginBackend {
    /// wasmtime's Pulley interpreter: no executable memory needed (`MemoryDenyWriteExecute=yes` stays on).
    Pulley,
    /// Cranelift native code: faster, needs writable+executable memory.
    Cranelift,
}

impl From<PluginBackend> for hotspot_plugins::Backend {
    fn from(b: PluginBackend) -> Self {
        match b {
            PluginBackend::Pulley => Self::Pulley,
            PluginBackend::Cranelift => Self::Cranelift,
        }
    }
}

/// `[plugins]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// `pulley` (default) or `cranelift`.
    #[serde(default = "default_backend")]
    pub backend: PluginBackend,
    /// Memory one plugin call may use, MiB.
    #[serde(default = "default_plugin_memory_mib")]
    pub max_memory_mib: usize,
    /// Time one plugin call may take, ms.
    #[serde(default = "default_plugin_deadline_ms")]
    pub call_deadline_ms: u64,
    /// An enrolment whose finger a quality plugin scores below this (0..=100) is refused, naming the finger
    /// (0: quality plugins only add warnings).
    #[serde(default)]
    pub enrol_min_finger_score: u8,
}

fn default_backend() -> PluginBackend {
    PluginBackend::Pulley
}

fn default_plugin_memory_mib() -> usize {
    64
}

fn default_plugin_deadline_ms() -> u64 {
    500
}

/// `[watchlist]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchlistConfig {
    /// Public keys whose signatures are accepted on bundles (`ed25519:<base64>`, from `hotspot-central keys init`).
    /// During a key rotation, list the old and the new key.
    pub trusted_keys: Vec<String>,
    /// A watchlist central has not confirmed current for longer than this raises `watchlist_stale`, hours.
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u64,
}

fn default_max_age_hours() -> u64 {
    24
}

impl WatchlistConfig {
    /// The trusted keys (validated at load, so this cannot fail for a loaded config).
    pub fn trusted(&self) -> hotspot_device_protocols::bundle::TrustedKeys {
        hotspot_device_protocols::bundle::TrustedKeys::parse(&self.trusted_keys).unwrap_or_default()
    }
}

/// `[face]`: where the face models are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceConfig {
    /// Folder holding `face_detection_yunet_2023mar.onnx` and `face_recognition_sface_2021dec.onnx`
    /// (`scripts/fetch-models.sh`; the Debian package installs them in `/usr/share/hotspot-edge/models`).
    pub models_dir: PathBuf,
}

/// `[retention]`: how long captured data is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep the biometric payload this long after central confirmed the capture, seconds (0: purge at once).
    #[serde(default)]
    pub payload_after_central_s: u64,
    /// Keep metadata (who, when, which results; no biometric data) this long after central confirmed, days.
    #[serde(default = "default_metadata_days")]
    pub metadata_days: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            payload_after_central_s: 0,
            metadata_days: default_metadata_days(),
        }
    }
}

/// Congestion controller for the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    /// BBR: keeps throughput on long, lossy links (the default).
    Bbr,
    /// CUBIC (quinn's default).
    Cubic,
    /// NewReno.
    Newreno,
}

/// `[site]`: who this gateway is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Site id (1..=64 of `A-Z a-z 0-9 - _ .`), also the MQTT client id suffix.
    pub id: String,
}

/// Which broker the stations talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerMode {
    /// rumqttd inside the gateway process.
    Embedded,
    /// An external broker (mosquitto).
    External,
}

/// `[broker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `embedded` or `external`.
    pub mode: BrokerMode,
    /// Embedded: TCP address the broker listens on.
    pub listen: Option<String>,
    /// External: `mqtt://host:port`.
    pub url: Option<String>,
    /// Largest MQTT payload accepted, bytes.
    #[serde(default = "default_max_payload_bytes")]
    pub max_payload_bytes: usize,
    /// First reconnect delay after the broker connection fails, ms.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Largest reconnect delay, ms.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Embedded: TLS address where stations connect with their client certificates (`station add`).
    pub tls_listen: Option<String>,
    /// Embedded: DNS names and IP addresses in the station listener's certificate (default: localhost,
    /// 127.0.0.1, ::1 and the `tls_listen` address).
    #[serde(default)]
    pub tls_server_names: Vec<String>,
    /// Stations may connect without credentials (a migration aid: loudly logged, and `check-config` warns).
    #[serde(default)]
    pub allow_anonymous_stations: bool,
}

/// `[uplink]`: the QUIC link to central.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// Central's `host:port` (UDP).
    pub central: String,
    /// Name in central's certificate.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// CA certificate (PEM) that signed central's and this gateway's certificates.
    pub ca: PathBuf,
    /// This gateway's client certificate (PEM).
    pub cert: PathBuf,
    /// This gateway's private key (PEM).
    pub key: PathBuf,
    /// First reconnect delay, ms.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Largest reconnect delay, ms.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Time allowed for one request (submit, watchlist fetch), ms.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Time allowed for one connection attempt (QUIC handshake), ms. Short, so that after an outage a fresh
    /// attempt starts soon instead of an old one waiting out its exponential retransmission backoff.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Connection idle timeout, ms.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Congestion controller: `bbr`, `cubic` or `newreno`.
    #[serde(default = "default_congestion")]
    pub congestion: Congestion,
    /// Per-stream and connection receive window, bytes (size for bandwidth x RTT of the worst link).
    #[serde(default = "default_window_bytes")]
    pub window_bytes: u64,
    /// Submissions in flight at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Backlog submissions per second after an outage; captures arriving while the link is up are not paced.
    #[serde(default = "default_drain_per_s")]
    pub drain_per_s: u64,
    /// Link monitor: RTT above which the link is DEGRADED, ms.
    #[serde(default = "default_degraded_rtt_ms")]
    pub degraded_rtt_ms: u64,
    /// Link monitor: packet loss above which the link is DEGRADED, percent.
    #[serde(default = "default_degraded_loss_percent")]
    pub degraded_loss_percent: f64,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// State folder (sled database, payload key).
    pub dir: PathBuf,
    /// 32-byte payload encryption key; made (mode 0600) on first start if absent. Default `DIR/payload.key`.
    pub key_file: Option<PathBuf>,
    /// Disk quota for the database, bytes: alarm at 80%, new captures refused at 100%.
    #[serde(default = "default_quota_bytes")]
    pub quota_bytes: u64,
}

/// `[console]`: the web console (HTTPS, local accounts; `docs/console.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// HTTPS address of the console and its `/healthz` (port 0: any free port).
    pub listen: String,
    /// Certificate chain (PEM); with `key`. Absent: a self-signed certificate is made in `storage.dir` at first
    /// start and reused.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of `cert`.
    pub key: Option<PathBuf>,
    /// A session not used for this long ends, seconds.
    #[serde(default = "default_session_idle_s")]
    pub session_idle_s: u64,
    /// A session ends this long after its login however much it is used, seconds.
    #[serde(default = "default_session_max_s")]
    pub session_max_s: u64,
    /// This many failed logins for one account, or from one address, within `login_lockout_s` lock it out...
    #[serde(default = "default_login_max_failures")]
    pub login_max_failures: u32,
    /// ... for this long after the last failure, seconds.
    #[serde(default = "default_login_lockout_s")]
    pub login_lockout_s: u64,
    /// How often the dashboard's charts take a sample (backlog, link quality), seconds.
    #[serde(default = "default_sample_interval_s")]
    pub sample_interval_s: u64,
    /// How much chart history is kept (in memory), hours.
    #[serde(default = "default_history_hours")]
    pub history_hours: u64,
}

fn default_session_idle_s() -> u64 {
    900
}
fn default_session_max_s() -> u64 {
    12 * 3600
}
fn default_login_max_failures() -> u32 {
    5
}
fn default_login_lockout_s() -> u64 {
    60
}
fn default_sample_interval_s() -> u64 {
    10
}
fn default_history_hours() -> u64 {
    6
}

/// `[metrics]`: a plain-HTTP listener with `/metrics` (Prometheus), `/healthz` and `/api/status`, no login
/// (`docs/metrics.md`): keep it on loopback or a management network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the listener runs.
    #[serde(default = "default_metrics_enabled")]
    pub enabled: bool,
    /// Its address (port 0: any free port).
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: default_metrics_enabled(),
            listen: default_metrics_listen(),
        }
    }
}

/// `[memory]`: when the memory an answer freed (the face networks' and the search's working buffers) is given back
/// to the system. Giving it back keeps a gateway with a large watchlist near its size at rest; keeping it makes the
/// next face probe faster and costs less CPU (its pages are not faulted in again: at 1k subjects the face probe was
/// 14-18 ms slower with the trim after every answer; `docs/benchmark.md`, "The trim after answers"). The default,
/// 1536 MiB, is the product's memory budget for a 100k-subject watchlist: under it nothing is given back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// After an answer, at most once a second, freed memory is given back only while the gateway's resident memory
    /// is above this, MiB (0: after every answer).
    #[serde(default = "default_release_above_mib")]
    pub release_above_mib: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            release_above_mib: default_release_above_mib(),
        }
    }
}

/// Most `memory.release_above_mib` accepts (1 TiB).
pub const MAX_RELEASE_ABOVE_MIB: u64 = 1 << 20;

fn default_release_above_mib() -> u64 {
    1536
}

fn default_metrics_enabled() -> bool {
    true
}
fn default_metrics_listen() -> String {
    "127.0.0.1:9464".to_owned()
}

fn default_max_payload_bytes() -> usize {
    hotspot_device_protocols::station::MAX_CAPTURE_BYTES
}
fn default_retry_initial_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    30_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_metadata_days() -> u64 {
    90
}
fn default_congestion() -> Congestion {
    Congestion::Bbr
}
fn default_window_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_max_in_flight() -> usize {
    32
}
fn default_drain_per_s() -> u64 {
    50
}
fn default_degraded_rtt_ms() -> u64 {
    1_000
}
fn default_degraded_loss_percent() -> f64 {
    5.0
}
fn default_quota_bytes() -> u64 {
    8 * 1024 * 1024 * 1024
}
fn default_server_name() -> String {
    "central".to_owned()
}

/// The configuration is unreadable or invalid; `errors` lists every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {} error(s):\n  {}", .errors.len(), .errors.join("\n  "))]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Every problem, each naming its key.
    pub errors: Vec<String>,
}

/// An external broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts://`: TLS with the gateway's certificate from the station CA.
    pub tls: bool,
}

/// Parses `mqtt://host:port` (port defaults to 1883) or `mqtts://host:port` (TLS, port defaults to 8883).
pub fn parse_mqtt_url(url: &str) -> Result<BrokerAddr, String> {
    let (rest, tls, default_port) =
        match (url.strip_prefix("mqtt://"), url.strip_prefix("mqtts://")) {
            (Some(r), _) => (r, false, 1883),
            (_, Some(r)) => (r, true, 8883),
            _ => return Err(format!("{url:?} must start with mqtt:// or mqtts://")),
        };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        ),
        None => (rest, default_port),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{url:?}: missing or bad host"));
    }
    Ok(BrokerAddr {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        tls,
    })
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let fail = |errors| ConfigError {
            path: path.to_owned(),
            errors,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(vec![format!("cannot read: {e}")]))?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let cfg: Config = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let errors = cfg.validate();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// Every problem with the values (files named must exist).
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if hotspot_device_protocols::station::validate_id(&self.site.id).is_err() {
            e.push(format!(
                "site.id {:?} must be 1..=64 characters of A-Z a-z 0-9 - _ .",
                self.site.id
            ));
        }
        self.validate_broker(&mut e);
        self.validate_uplink(&mut e);
        if self.console.listen.parse::<SocketAddr>().is_err() {
            e.push(format!(
                "console.listen {:?} is not an address like 127.0.0.1:8080",
                self.console.listen
            ));
        }
        self.validate_console(&mut e);
        if let Some(face) = &self.face {
            for name in hotspot_central::models::FILES {
                let path = face.models_dir.join(name);
                if !path.is_file() {
                    e.push(format!(
                        "face.models_dir: {} is missing (run scripts/fetch-models.sh {})",
                        path.display(),
                        face.models_dir.display()
                    ));
                }
            }
        }
        if self.watchlist.trusted_keys.is_empty() {
            e.push(
                "watchlist.trusted_keys must list at least one key (hotspot-central keys init prints it); \
                 without one no watchlist can ever be installed"
                    .into(),
            );
        }
        if let Err(errors) =
            hotspot_device_protocols::bundle::TrustedKeys::parse(&self.watchlist.trusted_keys)
        {
            e.extend(
                errors
                    .into_iter()
                    .map(|k| format!("watchlist.trusted_keys: {k}")),
            );
        }
        if let Some(p) = &self.plugins {
            if !(1..=1024).contains(&p.max_memory_mib) {
                e.push("plugins.max_memory_mib must be 1..=1024".into());
            }
            if !(1..=60_000).contains(&p.call_deadline_ms) {
                e.push("plugins.call_deadline_ms must be 1..=60000".into());
            }
            if p.enrol_min_finger_score > 100 {
                e.push("plugins.enrol_min_finger_score must be 0..=100".into());
            }
        }
        if !(1..=24 * 365).contains(&self.watchlist.max_age_hours) {
            e.push("watchlist.max_age_hours must be 1..=8760".into());
        }
        if self.storage.dir.as_os_str().is_empty() {
            e.push("storage.dir must not be empty".into());
        }
        if self.storage.quota_bytes < 16 * 1024 * 1024 {
            e.push("storage.quota_bytes must be at least 16777216 (16 MiB)".into());
        }
        if self.retention.metadata_days == 0 || self.retention.metadata_days > 3650 {
            e.push("retention.metadata_days must be 1..=3650".into());
        }
        if self.retention.payload_after_central_s > self.retention.metadata_days * 86_400 {
            e.push(
                "retention.payload_after_central_s must not exceed retention.metadata_days".into(),
            );
        }
        if self.memory.release_above_mib > MAX_RELEASE_ABOVE_MIB {
            e.push(format!(
                "memory.release_above_mib must be 0..={MAX_RELEASE_ABOVE_MIB}"
            ));
        }
        e
    }

    fn validate_broker(&self, e: &mut Vec<String>) {
        let b = &self.broker;
        match b.mode {
            BrokerMode::Embedded => match &b.listen {
                None => e.push("broker.listen is required when broker.mode = \"embedded\"".into()),
                Some(l) if l.parse::<SocketAddr>().is_err() => {
                    e.push(format!(
                        "broker.listen {l:?} is not an address like 127.0.0.1:1883"
                    ));
                }
                Some(_) => {}
            },
            BrokerMode::External => match &b.url {
                None => e.push("broker.url is required when broker.mode = \"external\"".into()),
                Some(u) => {
                    if let Err(m) = parse_mqtt_url(u) {
                        e.push(format!("broker.url {m}"));
                    }
                }
            },
        }
        if !(1024..=256 * 1024 * 1024).contains(&b.max_payload_bytes) {
            e.push("broker.max_payload_bytes must be 1024..=268435456".into());
        }
        check_retry("broker", b.retry_initial_ms, b.retry_max_ms, e);
        self.validate_station_access(e);
    }

    /// `[broker]` keys of station authentication (`docs/configuration.md`, "Station authentication").
    fn validate_station_access(&self, e: &mut Vec<String>) {
        let b = &self.broker;
        let addr = |v: &Option<String>| v.as_deref().and_then(|l| l.parse::<SocketAddr>().ok());
        match b.mode {
            BrokerMode::Embedded => {
                match (&b.tls_listen, addr(&b.tls_listen)) {
                    (Some(l), None) => e.push(format!(
                        "broker.tls_listen {l:?} is not an address like 0.0.0.0:8883"
                    )),
                    (None, _) if !b.allow_anonymous_stations => e.push(
                        "broker.tls_listen is required with the embedded broker: stations connect there with \
                         their certificates (hotspot-gateway station add); allow_anonymous_stations = true \
                         lets them in without (migration only)"
                            .into(),
                    ),
                    _ => {}
                }
                if let (Some(plain), Some(tls)) = (addr(&b.listen), addr(&b.tls_listen))
                    && plain.port() == tls.port()
                {
                    e.push("broker.listen and broker.tls_listen must use different ports".into());
                }
                if let Some(plain) = addr(&b.listen)
                    && !b.allow_anonymous_stations
                    && !plain.ip().is_loopback()
                {
                    e.push(format!(
                        "broker.listen {plain} must be a loopback address (e.g. 127.0.0.1:1883) while stations \
                         authenticate: it is the gateway's own connection; stations use broker.tls_listen"
                    ));
                }
                if let Err(m) = crate::stations::check_server_names(&b.tls_server_names) {
                    e.push(format!("broker.tls_server_names: {m}"));
                }
            }
            BrokerMode::External => {
                if b.tls_listen.is_some() || !b.tls_server_names.is_empty() {
                    e.push(
                        "broker.tls_listen and broker.tls_server_names are for the embedded broker; mosquitto's \
                         certificate comes from `hotspot-gateway station broker-cert`"
                            .into(),
                    );
                }
                let plain = b
                    .url
                    .as_deref()
                    .and_then(|u| parse_mqtt_url(u).ok())
                    .is_some_and(|a| !a.tls);
                if plain && !b.allow_anonymous_stations {
                    e.push(
                        "broker.url must be mqtts://HOST:PORT: the gateway authenticates to the broker with its \
                         certificate from the station CA, and stations with theirs (docs/configuration.md); a \
                         plain mqtt:// broker needs allow_anonymous_stations = true"
                            .into(),
                    );
                }
            }
        }
    }

    /// What is allowed but unsafe (`check-config` prints these; the gateway logs them at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.broker.allow_anonymous_stations {
            w.push(
                "broker.allow_anonymous_stations = true: stations connect without credentials, and any device on \
                 the site network can publish captures as any station and read every station's results; use it \
                 only while migrating stations to certificates"
                    .to_owned(),
            );
        }
        w
    }

    fn validate_console(&self, e: &mut Vec<String>) {
        let c = &self.console;
        match (&c.cert, &c.key) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                for (k, path) in [("console.cert", cert), ("console.key", key)] {
                    if !path.is_file() {
                        e.push(format!(
                            "{k}: {} does not exist or is not a file",
                            path.display()
                        ));
                    }
                }
            }
            _ => e.push("console.cert and console.key go together: set both or neither".into()),
        }
        if !(1..=86_400).contains(&c.session_idle_s) {
            e.push("console.session_idle_s must be 1..=86400".into());
        }
        if c.session_max_s < c.session_idle_s || c.session_max_s > 7 * 86_400 {
            e.push(
                "console.session_max_s must be at least console.session_idle_s and at most 604800"
                    .into(),
            );
        }
        if !(1..=100).contains(&c.login_max_failures) {
            e.push("console.login_max_failures must be 1..=100".into());
        }
        if !(1..=86_400).contains(&c.login_lockout_s) {
            e.push("console.login_lockout_s must be 1..=86400".into());
        }
        if !(1..=3_600).contains(&c.sample_interval_s) {
            e.push("console.sample_interval_s must be 1..=3600".into());
        }
        if !(1..=168).contains(&c.history_hours) {
            e.push("console.history_hours must be 1..=168".into());
        } else if c.history_hours * 3_600 / c.sample_interval_s.max(1) > 100_000 {
            e.push(
                "console.history_hours / console.sample_interval_s keep more than 100000 samples"
                    .into(),
            );
        }
        if self.metrics.enabled && self.metrics.listen.parse::<SocketAddr>().is_err() {
            e.push(format!(
                "metrics.listen {:?} is not an address like 127.0.0.1:9464",
                self.metrics.listen
            ));
        }
    }

    fn validate_uplink(&self, e: &mut Vec<String>) {
        let u = &self.uplink;
        if u.central
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            e.push(format!("uplink.central {:?} must be host:port", u.central));
        }
        if rustls::pki_types::ServerName::try_from(u.server_name.as_str()).is_err() {
            e.push(format!(
                "uplink.server_name {:?} is not a valid DNS name",
                u.server_name
            ));
        }
        for (key, path) in [
            ("uplink.ca", &u.ca),
            ("uplink.cert", &u.cert),
            ("uplink.key", &u.key),
        ] {
            if !path.is_file() {
                e.push(format!(
                    "{key}: {} does not exist or is not a file",
                    path.display()
                ));
            }
        }
        check_retry("uplink", u.retry_initial_ms, u.retry_max_ms, e);
        if !(100..=600_000).contains(&u.request_timeout_ms) {
            e.push("uplink.request_timeout_ms must be 100..=600000".into());
        }
        if !(100..=600_000).contains(&u.connect_timeout_ms) {
            e.push("uplink.connect_timeout_ms must be 100..=600000".into());
        }
        if !(1_000..=3_600_000).contains(&u.idle_timeout_ms) {
            e.push("uplink.idle_timeout_ms must be 1000..=3600000".into());
        }
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&u.window_bytes) {
            e.push("uplink.window_bytes must be 65536..=1073741824".into());
        }
        if !(1..=1024).contains(&u.max_in_flight) {
            e.push("uplink.max_in_flight must be 1..=1024".into());
        }
        if !(1..=100_000).contains(&u.drain_per_s) {
            e.push("uplink.drain_per_s must be 1..=100000".into());
        }
        if u.degraded_rtt_ms == 0 {
            e.push("uplink.degraded_rtt_ms must be at least 1".into());
        }
        if !(0.0..=100.0).contains(&u.degraded_loss_percent) {
            e.push("uplink.degraded_loss_percent must be 0..=100".into());
        }
    }

    /// The retention policy in milliseconds.
    pub fn retention(&self) -> crate::store::Retention {
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        crate::store::Retention {
            payload_ms: ms(self.retention.payload_after_central_s),
            metadata_ms: ms(self.retention.metadata_days.saturating_mul(86_400)),
        }
    }

    /// The audit log file.
    pub fn audit_file(&self) -> PathBuf {
        self.storage.dir.join("audit.log")
    }

    /// The payload key file in force.
    pub fn key_file(&self) -> PathBuf {
        self.storage
            .key_file
            .clone()
            .unwrap_or_else(|| self.storage.dir.join("payload.key"))
    }
}

fn check_retry(section: &str, initial: u64, max: u64, e: &mut Vec<String>) {
    if initial == 0 || initial > max {
        e.push(format!(
            "{section}.retry_initial_ms must be at least 1 and at most {section}.retry_max_ms"
        ));
    }
    if max > 3_600_000 {
        e.push(format!(
            "{section}.retry_max_ms must be at most 3600000 (one hour)"
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> String {
        for f in ["ca.pem", "gw.pem", "gw.key"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        format!(
            r#"
[site]
id = "post-1"
[broker]
mode = "embedded"
listen = "127.0.0.1:1883"
tls_listen = "0.0.0.0:8883"
[uplink]
central = "127.0.0.1:4433"
ca = "{d}/ca.pem"
cert = "{d}/gw.pem"
key = "{d}/gw.key"
[storage]
dir = "{d}/state"
[console]
listen = "127.0.0.1:0"
[watchlist]
trusted_keys = ["ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="]
"#,
            d = dir.display()
        )
    }

    #[test]
    fn valid_config_loads_with_defaults() {
        let d = tempfile::tempdir().unwrap();
        let c = Config::parse(&sample(d.path())).unwrap();
        assert_eq!(c.uplink.retry_max_ms, 30_000);
        assert_eq!(c.uplink.server_name, "central");
        assert_eq!(c.key_file(), d.path().join("state/payload.key"));
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let d = tempfile::tempdir().unwrap();
        let text = sample(d.path())
            .replace("post-1", "bad id!")
            .replace("127.0.0.1:1883", "nowhere")
            .replace("127.0.0.1:4433", "no-port")
            .replace("gw.key", "missing.key")
            .replace("ed25519:O2on", "ed25519:!O2on");
        let errors = Config::parse(&text).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        for key in [
            "site.id",
            "broker.listen",
            "uplink.central",
            "uplink.key",
            "watchlist.trusted_keys",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(key)),
                "{key} missing in {errors:#?}"
            );
        }
    }

    #[test]
    fn a_gateway_without_trusted_keys_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let text = sample(d.path()).replace(
            "trusted_keys = [\"ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"]",
            "trusted_keys = []",
        );
        let errors = Config::parse(&text).unwrap_err();
        assert!(errors[0].contains("at least one key"), "{errors:?}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let text = sample(d.path()).replace("[console]", "[console]\nport = 1");
        let errors = Config::parse(&text).unwrap_err();
        assert!(errors[0].contains("unknown field"), "{errors:?}");
    }

    #[test]
    fn mqtt_urls() {
        assert_eq!(
            parse_mqtt_url("mqtt://127.0.0.1:1884").unwrap(),
            BrokerAddr {
                host: "127.0.0.1".into(),
                port: 1884,
                tls: false,
            }
        );
        assert_eq!(parse_mqtt_url("mqtt://broker").unwrap().port, 1883);
        let tls = parse_mqtt_url("mqtts://broker").unwrap();
        assert_eq!((tls.port, tls.tls), (8883, true));
        assert!(parse_mqtt_url("http://x:1").is_err());
        assert!(parse_mqtt_url("mqtt://:1").is_err());
    }

    fn broker_errors(text: &str) -> Vec<String> {
        Config::parse(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.contains("broker."))
            .collect()
    }

    #[test]
    fn the_embedded_broker_needs_a_station_tls_listener_and_a_loopback_plain_one() {
        let d = tempfile::tempdir().unwrap();
        let base = sample(d.path());
        let c = Config::parse(&base).unwrap();
        assert!(!c.broker.allow_anonymous_stations);
        assert!(c.warnings().is_empty());

        let no_tls = base.replace("tls_listen = \"0.0.0.0:8883\"\n", "");
        let e = broker_errors(&no_tls);
        assert!(
            e.len() == 1 && e[0].contains("broker.tls_listen is required"),
            "{e:?}"
        );

        let open_plain = base.replace("listen = \"127.0.0.1:1883\"", "listen = \"0.0.0.0:1883\"");
        let e = broker_errors(&open_plain);
        assert!(e.len() == 1 && e[0].contains("loopback"), "{e:?}");

        let same_port = base.replace("0.0.0.0:8883", "0.0.0.0:1883");
        let e = broker_errors(&same_port);
        assert!(e.iter().any(|m| m.contains("different ports")), "{e:?}");

        let bad_tls = base.replace("0.0.0.0:8883", "nowhere");
        let e = broker_errors(&bad_tls);
        assert!(e.len() == 1 && e[0].contains("broker.tls_listen"), "{e:?}");

        let names = base.replace(
            "tls_listen = \"0.0.0.0:8883\"",
            "tls_listen = \"0.0.0.0:8883\"\ntls_server_names = [\"gw.example\", \"10.0.0.1\", \"not a name\"]",
        );
        let e = broker_errors(&names);
        assert!(e.len() == 1 && e[0].contains("not a name"), "{e:?}");
    }

    #[test]
    fn anonymous_stations_are_an_explicit_choice_with_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let text = sample(d.path())
            .replace(
                "tls_listen = \"0.0.0.0:8883\"\n",
                "allow_anonymous_stations = true\n",
            )
            .replace("127.0.0.1:1883", "0.0.0.0:1883");
        let c = Config::parse(&text).unwrap();
        assert!(c.broker.allow_anonymous_stations);
        let w = c.warnings();
        assert!(
            w.len() == 1 && w[0].contains("allow_anonymous_stations"),
            "{w:?}"
        );
        let bad = text.replace(
            "allow_anonymous_stations = true",
            "allow_anonymous_stations = \"yes\"",
        );
        assert!(Config::parse(&bad).is_err());
    }

    #[test]
    fn an_external_broker_is_reached_over_tls_unless_stations_are_anonymous() {
        let d = tempfile::tempdir().unwrap();
        let base = sample(d.path()).replace(
            "mode = \"embedded\"\nlisten = \"127.0.0.1:1883\"\ntls_listen = \"0.0.0.0:8883\"",
            "mode = \"external\"\nurl = \"mqtts://127.0.0.1:8883\"",
        );
        let c = Config::parse(&base).unwrap();
        assert!(
            parse_mqtt_url(c.broker.url.as_deref().unwrap())
                .unwrap()
                .tls
        );

        let plain = base.replace("mqtts://127.0.0.1:8883", "mqtt://127.0.0.1:1883");
        let e = broker_errors(&plain);
        assert!(e.len() == 1 && e[0].contains("mqtts://"), "{e:?}");
        let anon = plain.replace("[uplink]", "allow_anonymous_stations = true\n[uplink]");
        assert_eq!(Config::parse(&anon).unwrap().warnings().len(), 1);

        let listener = base.replace("[uplink]", "tls_listen = \"0.0.0.0:8883\"\n[uplink]");
        let e = broker_errors(&listener);
        assert!(e.len() == 1 && e[0].contains("embedded broker"), "{e:?}");
    }
    #[test]
    fn console_and_metrics_keys_have_defaults_and_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let c = Config::parse(&sample(d.path())).unwrap();
        assert_eq!(c.console.session_idle_s, 900);
        assert_eq!(c.console.login_max_failures, 5);
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.listen, "127.0.0.1:9464");
        let text = sample(d.path()).replace(
            "[console]\nlisten = \"127.0.0.1:0\"",
            "[console]\nlisten = \"127.0.0.1:0\"\ncert = \"/nonexistent.pem\"\nsession_idle_s = 0\n\
             session_max_s = 10\nlogin_max_failures = 0\nsample_interval_s = 1\nhistory_hours = 100\n\
             [metrics]\nlisten = \"nowhere\"",
        );
        let errors = Config::parse(&text).unwrap_err();
        for key in [
            "console.cert and console.key",
            "console.session_idle_s",
            "console.login_max_failures",
            "more than 100000 samples",
            "metrics.listen",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(key)),
                "{key} missing in {errors:#?}"
            );
        }
        let off = sample(d.path()) + "[metrics]\nenabled = false\nlisten = \"nowhere\"\n";
        assert!(!Config::parse(&off).unwrap().metrics.enabled);
    }

    #[test]
    fn memory_release_threshold_has_a_default_and_is_checked() {
        let d = tempfile::tempdir().unwrap();
        let c = Config::parse(&sample(d.path())).unwrap();
        assert_eq!(c.memory.release_above_mib, 1536);
        let always = sample(d.path()) + "[memory]\nrelease_above_mib = 0\n";
        assert_eq!(Config::parse(&always).unwrap().memory.release_above_mib, 0);
        let huge = sample(d.path()) + "[memory]\nrelease_above_mib = 2000000\n";
        let errors = Config::parse(&huge).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("memory.release_above_mib")),
            "{errors:#?}"
        );
        let unknown = sample(d.path()) + "[memory]\nrelease_above = 5\n";
        assert!(Config::parse(&unknown).is_err());
    }
}
