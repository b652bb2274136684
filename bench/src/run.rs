//! Running the matrix: per watchlist size, the matcher-alone baseline (child process), central and the release
//! gateway started for real, the watchlist installed through the uplink (timed), the gateway restarted (restore
//! timed), then every scenario of that size against the gateway and its bus floor against the echo client.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use hotspot_device_protocols::station::Decision;
use tracing::{info, warn};
use uuid::Uuid;

use crate::matcher_alone;
use crate::procs::{self, CpuMark, CpuUse, LogFollower, Pids, Proc, Sampler};
use crate::report::{LoadResult, RampResult, RampStep, Report, ScenarioResult};
use crate::scenario::{MatrixSizes, Pattern, Scenario, matrix, select, size_name};
use crate::stations::{BrokerAccess, Echo, Fleet, Record, Sent, Target, Tracker};
use crate::stats::{RampNext, RampPlan, Summary, ladder_rate, ladder_step_at_or_below, ramp_next};
use crate::workload::{self, Kind, Photos, PoolCapture};

/// The gateway's site id and certificate name.
const GATEWAY_NAME: &str = "bench-gw";
/// No answer for this long ends a measurement (what is missing is reported).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A ramp step holds when its p99 is at most this.
const RAMP_P99_LIMIT_MS: f64 = 1000.0;

/// The longest gap the matcher alone leaves between answers when paced like a sustained scenario (a slower rate
/// gets this gap: a second already leaves the caches as cold as they get, `docs/benchmark.md`, "Idle gaps").
const MAX_PACE: Duration = Duration::from_secs(2);

/// Which broker the stations and the gateway use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerKind {
    /// The gateway's embedded broker (rumqttd in the gateway process).
    Embedded,
    /// mosquitto, started by the benchmark.
    Mosquitto,
}

/// Everything the run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The smaller matrix.
    pub quick: bool,
    /// `--scenarios` globs.
    pub scenarios: Vec<String>,
    /// Broker.
    pub broker: BrokerKind,
    /// Release gateway binary.
    pub gateway_bin: PathBuf,
    /// Release central binary.
    pub central_bin: PathBuf,
    /// Face models folder.
    pub models: PathBuf,
    /// Face photos folder (deepface-pairs).
    pub faces: PathBuf,
    /// Cache of generated subjects.
    pub cache: PathBuf,
    /// Working folder (databases, logs, bundles).
    pub work: PathBuf,
    /// Keep the working folder.
    pub keep_work: bool,
    /// Kill the gateway above this resident size, MiB.
    pub max_rss_mib: f64,
    /// Matrix sizes.
    pub sizes: MatrixSizes,
    /// Seconds per ramp step (at least `ramp_min_captures` captures).
    pub ramp_step_s: f64,
    /// Captures per ramp step, at least.
    pub ramp_min_captures: usize,
    /// Ramp steps upwards, at most.
    pub ramp_max_steps: usize,
    /// Captures of a sustained bus-floor run, at most.
    pub floor_captures: usize,
    /// TCP_NODELAY on the benchmark's stations and echo client.
    pub client_nodelay: bool,
    /// Captures of an ideal-gateway run, at most.
    pub ideal_captures: usize,
    /// Captures of a sustained scenario the matcher alone cannot keep up with.
    pub overload_captures: usize,
    /// `set_tcp_nodelay true` in mosquitto's configuration.
    pub mosquitto_nodelay: bool,
}

/// Unix ms now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The scenarios the options select, in running order (by watchlist size, then stations, then pattern).
pub fn planned(opts: &Options) -> Vec<Scenario> {
    let mut s = select(&matrix(opts.quick, opts.sizes), &opts.scenarios);
    let order = |p: &Pattern| match p {
        Pattern::Sustained { .. } => 0,
        Pattern::Burst => 1,
        Pattern::Ramp => 2,
    };
    s.sort_by_key(|x| (x.watchlist, x.stations, order(&x.pattern), x.kind));
    s
}

/// Runs the selected scenarios, adding results to `report` as they come.
pub fn run(opts: &Options, report: &mut Report) -> anyhow::Result<()> {
    let scenarios = planned(opts);
    if scenarios.is_empty() {
        bail!("no scenario matches {:?} (see --list)", opts.scenarios);
    }
    for s in &scenarios {
        info!(scenario = %s.name(), "planned");
    }
    for bin in [&opts.gateway_bin, &opts.central_bin] {
        if !bin.is_file() {
            bail!(
                "{} not found: build the release binaries first (cargo build --release -p hotspot-gateway \
                 -p hotspot-central) or pass --gateway-bin/--central-bin",
                bin.display()
            );
        }
    }
    let engine = hotspot_central::models::load_face_engine(&opts.models)
        .with_context(|| format!("face models in {}", opts.models.display()))?;
    let photos = workload::photos(&opts.faces, &engine)?;
    drop(engine);
    let names = |v: &[workload::Photo]| {
        v.iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    info!(
        enrolled = %names(&photos.enrolled),
        strangers = %names(&photos.strangers),
        "face photos"
    );
    report.note(format!(
        "face photos (deepface-pairs): enrolled as hit subjects {}; strangers {}",
        names(&photos.enrolled),
        names(&photos.strangers)
    ));
    std::fs::create_dir_all(&opts.work)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sizes: BTreeSet<usize> = scenarios.iter().map(|s| s.watchlist).collect();
    for n in sizes {
        let these: Vec<Scenario> = scenarios
            .iter()
            .filter(|s| s.watchlist == n)
            .copied()
            .collect();
        let outcome = rt.block_on(async {
            tokio::select! {
                r = run_watchlist(opts, &photos, n, &these, report) => r,
                _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            }
        });
        if let Err(e) = outcome {
            report.note(format!("watchlist {}: stopped: {e:#}", size_name(n)));
            report.write_outputs()?;
            return Err(e);
        }
        report.write_outputs()?;
    }
    Ok(())
}

/// The processes of one watchlist size.
struct Stack {
    central: Proc,
    broker: Option<Proc>,
    gateway: Proc,
    sampler: Arc<Sampler>,
}

impl Stack {
    fn pids(&self) -> Pids {
        Pids {
            gateway: Some(self.gateway.pid()),
            central: Some(self.central.pid()),
            broker: self.broker.as_ref().map(Proc::pid),
        }
    }
}

/// Configuration keys newer gateways have and older ones refuse (unknown keys are errors): stations connect to the
/// embedded broker without certificates (the documented `allow_anonymous_stations`, so that the stations and the
/// echo client of the bus floor use the same plain MQTT listener), and the metrics listener on any free port
/// rather than its fixed default.
const OPTIONAL_KEYS: [(&str, &str); 2] = [
    (
        "allow_anonymous_stations",
        "allow_anonymous_stations = true\n",
    ),
    ("metrics", "[metrics]\nlisten = \"127.0.0.1:0\"\n"),
];

/// Writes the gateway's configuration with as many of [`OPTIONAL_KEYS`] as this gateway accepts (checked with
/// its own `check-config`); returns the path and the optional keys used.
fn gateway_config(
    opts: &Options,
    dir: &Path,
    broker: &str,
    central_port: u16,
    public_key: &str,
) -> anyhow::Result<(PathBuf, Vec<&'static str>)> {
    let path = dir.join("gateway.toml");
    let mut last_error = String::new();
    // Every subset, the largest first.
    for mask in (0..1u32 << OPTIONAL_KEYS.len()).rev() {
        let used: Vec<(&str, &str)> = OPTIONAL_KEYS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, k)| *k)
            .collect();
        let anonymous = used.iter().any(|(k, _)| *k == "allow_anonymous_stations");
        let metrics = used.iter().any(|(k, _)| *k == "metrics");
        let text = config_text(
            dir,
            broker,
            central_port,
            public_key,
            &opts.models,
            anonymous,
            metrics,
        )?;
        std::fs::write(&path, text)?;
        let out = Command::new(&opts.gateway_bin)
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .output()?;
        if out.status.success() {
            return Ok((path, used.iter().map(|(k, _)| *k).collect()));
        }
        last_error = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    bail!("the gateway refuses the benchmark's configuration: {last_error}")
}

fn config_text(
    dir: &Path,
    broker: &str,
    central_port: u16,
    public_key: &str,
    models: &Path,
    anonymous: bool,
    metrics: bool,
) -> anyhow::Result<String> {
    let q = |p: &Path| serde_json::to_string(&p.display().to_string());
    let pki = dir.join("pki");
    let anonymous = if anonymous { OPTIONAL_KEYS[0].1 } else { "" };
    let metrics = if metrics { OPTIONAL_KEYS[1].1 } else { "" };
    let text = format!(
        "[site]\nid = \"{GATEWAY_NAME}\"\n\
         [broker]\n{broker}\n{anonymous}\
         [uplink]\ncentral = \"127.0.0.1:{central_port}\"\nca = {}\ncert = {}\nkey = {}\nrequest_timeout_ms = 120000\n\
         [watchlist]\ntrusted_keys = [{}]\n\
         [storage]\ndir = {}\n\
         [console]\nlisten = \"127.0.0.1:0\"\n\
         [face]\nmodels_dir = {}\n{metrics}",
        q(&pki.join("ca.pem"))?,
        q(&pki.join(format!("{GATEWAY_NAME}.pem")))?,
        q(&pki.join(format!("{GATEWAY_NAME}.key")))?,
        serde_json::to_string(public_key)?,
        q(&dir.join("gateway"))?,
        q(models)?,
    );
    Ok(text)
}

fn start_gateway(
    opts: &Options,
    config: &Path,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(&opts.gateway_bin);
    cmd.arg("--log-json")
        .arg("run")
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG");
    procs::spawn_ready("gateway", cmd, log, timeout)
}

fn start_mosquitto(dir: &Path, nodelay: bool) -> anyhow::Result<(Proc, u16)> {
    let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| anyhow!("mosquitto is not installed (apt-get install mosquitto)"))?;
    let port = procs::free_tcp_port()?;
    let data = dir.join("mosquitto");
    std::fs::create_dir_all(&data)?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             autosave_interval 60\nmessage_size_limit 16777216\nmax_inflight_messages 100\n\
             max_queued_messages 100000\n{}",
            data.display(),
            if nodelay {
                "set_tcp_nodelay true\n"
            } else {
                ""
            }
        ),
    )?;
    let mut cmd = Command::new(exe);
    cmd.arg("-c").arg(&conf);
    let p = procs::spawn_plain("mosquitto", cmd, &dir.join("mosquitto.log"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("mosquitto did not start; see {}", p.log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((p, port))
}

async fn run_watchlist(
    opts: &Options,
    photos: &Photos,
    n: usize,
    scenarios: &[Scenario],
    report: &mut Report,
) -> anyhow::Result<()> {
    let dir = opts.work.join(format!("w{}", size_name(n)));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    hotspot_central::pki::init(&dir.join("pki"))?;
    hotspot_central::pki::issue_gateway(&dir.join("pki"), GATEWAY_NAME)?;
    let (cache, photos_c) = (opts.cache.clone(), photos.clone());
    let prepared =
        tokio::task::spawn_blocking(move || workload::prepare(&cache, n, &photos_c)).await??;
    if prepared.generated {
        report.note(format!(
            "the {}-subject snapshot was generated in this run (the cache had none that fit)",
            size_name(n)
        ));
    }
    // Central serves the cached bundle; a hard link costs no disk (a copy if the cache is elsewhere).
    let watchlists = dir.join("central").join("bundles").join("watchlist");
    std::fs::create_dir_all(&watchlists)?;
    let served = watchlists.join(format!("{:020}.snapshot", 1));
    if std::fs::hard_link(&prepared.bundle, &served).is_err() {
        std::fs::copy(&prepared.bundle, &served)?;
    }
    let bundle = prepared.bundle.clone();
    let bundle_bytes = prepared.bytes;
    let pools = workload::pools(n, photos)?;
    let pool_file = dir.join("pool.tsv");
    matcher_alone::write_pool_file(&pool_file, &pools)?;
    info!(
        subjects = n,
        "matcher alone: building the index and timing the pools (child process)"
    );
    let (b, p, m, l) = (
        bundle.clone(),
        pool_file.clone(),
        opts.models.clone(),
        dir.join("matcher-alone.log"),
    );
    let (matcher, child) =
        tokio::task::spawn_blocking(move || matcher_alone::start_child(&b, &p, &m, &l)).await??;
    info!(
        build_s = matcher.build_s,
        rss_mib = matcher.rss_mib,
        "matcher alone measured"
    );

    let (broker_proc, broker_port, broker_cfg) = match opts.broker {
        BrokerKind::Embedded => {
            let port = procs::free_tcp_port()?;
            (
                None,
                port,
                format!("mode = \"embedded\"\nlisten = \"127.0.0.1:{port}\""),
            )
        }
        BrokerKind::Mosquitto => {
            let (p, port) = start_mosquitto(&dir, opts.mosquitto_nodelay)?;
            (
                Some(p),
                port,
                format!("mode = \"external\"\nurl = \"mqtt://127.0.0.1:{port}\""),
            )
        }
    };
    let central_port = procs::free_udp_port()?;
    let mut cmd = Command::new(&opts.central_bin);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.join("central"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{central_port}"))
        .arg("--pki")
        .arg(dir.join("pki"))
        .env_remove("RUST_LOG");
    let central = procs::spawn_ready(
        "central",
        cmd,
        &dir.join("central.log"),
        Duration::from_secs(60),
    )?;
    let (config, optional) =
        gateway_config(opts, &dir, &broker_cfg, central_port, &prepared.public_key)?;
    if optional.contains(&"allow_anonymous_stations") {
        report.note_once(
            "the gateway requires station certificates by default; the benchmark runs it with the documented \
             `broker.allow_anonymous_stations = true`, so stations and the bus-floor echo client use the plain \
             MQTT listener (no TLS relay in the path)"
                .into(),
        );
    }

    // First start: empty, fetches the snapshot from central and installs it.
    let log1 = dir.join("gateway-install.log");
    let mut follower = LogFollower::from_end(&log1);
    let gateway = start_gateway(opts, &config, &log1, Duration::from_secs(120))?;
    let ready_at = Instant::now();
    let sampler = Sampler::start(gateway.pid(), opts.max_rss_mib);
    let found = tokio::task::spawn_blocking(move || {
        follower.wait_for(Duration::from_secs(3600), |l| {
            l.contains("\"watchlist installed\"") || l.contains("watchlist update refused")
        })
    })
    .await?;
    sampler.stop();
    if sampler.over_limit() {
        bail!(
            "the gateway passed {} MiB while installing the {}-subject watchlist and was killed",
            opts.max_rss_mib,
            n
        );
    }
    let (line, installed_at) = found
        .ok_or_else(|| anyhow!("the watchlist was never installed; see {}", log1.display()))?;
    if line.contains("refused") {
        bail!("the gateway refused the watchlist: {line}");
    }
    let install_s = installed_at.duration_since(ready_at).as_secs_f64();
    let took_ms = serde_json::from_str::<serde_json::Value>(&line)
        .ok()
        .and_then(|v| v["fields"]["took_ms"].as_u64());
    // As after the restart, 3 s later: the gateway gives the build's freed memory back on a blocking thread after
    // the swap, and a sample taken at the log line raced it (2113 MiB against about 1450 a few seconds later).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_install, hwm_install) = procs::memory_mib(gateway.pid()).unwrap_or_default();
    info!(
        install_s,
        ?took_ms,
        rss_install,
        hwm_install,
        "watchlist installed"
    );
    gateway.stop(Duration::from_secs(60));

    // Restart: restores the sealed watchlist before it says it is ready.
    let log2 = dir.join("gateway.log");
    let t = Instant::now();
    let gateway = start_gateway(opts, &config, &log2, Duration::from_secs(3600))?;
    let restore_s = t.elapsed().as_secs_f64();
    let (_, hwm_restore) = procs::memory_mib(gateway.pid()).unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_restore, _) = procs::memory_mib(gateway.pid()).unwrap_or_default();
    info!(restore_s, rss_restore, hwm_restore, "gateway restarted");
    let sampler = Sampler::start(gateway.pid(), opts.max_rss_mib);
    report.add_load(LoadResult {
        watchlist: n,
        bundle_mib: bundle_bytes as f64 / 1048576.0,
        install_s,
        install_gateway_ms: took_ms,
        rss_after_install_mib: rss_install,
        hwm_install_mib: hwm_install,
        restart_to_ready_s: restore_s,
        rss_after_restart_mib: rss_restore,
        hwm_restart_mib: hwm_restore,
        kib_per_subject: rss_restore * 1024.0 / n as f64,
        matcher_alone_build_s: matcher.build_s,
        matcher_alone_rss_mib: matcher.rss_mib,
    })?;
    let mut stack = Stack {
        central,
        broker: broker_proc,
        gateway,
        sampler,
    };
    let access = BrokerAccess {
        host: "127.0.0.1".into(),
        port: broker_port,
        nodelay: opts.client_nodelay,
    };
    let tracker = Arc::new(Tracker::default());
    let mut env = Env {
        opts,
        access,
        tracker,
        fleet: None,
        echo: None,
        pools: &pools,
        passes: HashMap::new(),
        matcher,
        child: Some(child),
        floors: HashMap::new(),
        warmed: HashSet::new(),
        echo_bytes: Arc::new(std::sync::atomic::AtomicUsize::new(400)),
    };
    let mut failure = None;
    for sc in scenarios {
        info!(scenario = %sc.name(), "running");
        let r = match sc.pattern {
            Pattern::Ramp => env.ramp(&stack, sc).await,
            _ => env.once(&stack, sc).await,
        };
        if stack.sampler.over_limit() {
            failure = Some(anyhow!(
                "the gateway passed {} MiB during {} and was killed",
                opts.max_rss_mib,
                sc.name()
            ));
            break;
        }
        if !stack.gateway.alive() {
            failure = Some(anyhow!(
                "the gateway died during {}; its log ends with:\n{}",
                sc.name(),
                stack.gateway.log_tail(20)
            ));
            break;
        }
        match r {
            Ok(r) => {
                info!(scenario = %r.name, p50 = ?r.latency_ms.map(|s| s.p50), p99 = ?r.latency_ms.map(|s| s.p99), "done");
                report.add_result(r)?;
            }
            Err(e) => {
                failure = Some(e.context(format!("scenario {}", sc.name())));
                break;
            }
        }
    }
    if let Some(f) = env.fleet.take() {
        f.disconnect().await;
    }
    drop(env);
    stack.sampler.stop();
    stack.gateway.stop(Duration::from_secs(30));
    stack.central.stop(Duration::from_secs(10));
    if let Some(b) = stack.broker.take() {
        b.stop(Duration::from_secs(5));
    }
    if !opts.keep_work {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// When captures are sent.
#[derive(Debug, Clone, Copy)]
enum Schedule {
    /// `count` at `rate` per second.
    Rate { rate: f64, count: usize },
    /// One per station, all at once.
    Burst,
}

/// A measurement: what was sent and answered, and what it cost.
struct Measured {
    record: Record,
    complete: bool,
    cpu: CpuUse,
    rss_max_mib: f64,
    hwm_mib: Option<f64>,
    /// First send to last answer, s.
    drain_s: f64,
    /// The gateway's own stage times of the local results it logged meanwhile (empty for the echo).
    stages: Stages,
}

/// The gateway's stage times (its `local result` log lines: `probe_ms`, `queue_ms`, `match_ms`), ms.
#[derive(Debug, Clone, Default, PartialEq)]
struct Stages {
    probe: Vec<f64>,
    queue: Vec<f64>,
    matching: Vec<f64>,
    /// The matcher's own time in the gateway (`matcher_ms`, since session 11), by capture id.
    matcher: HashMap<Uuid, f64>,
}

/// The stage times of the gateway's JSON log lines that are `local result`s.
fn parse_stages<'a>(lines: impl IntoIterator<Item = &'a str>) -> Stages {
    let mut out = Stages::default();
    for line in lines.into_iter().filter(|l| l.contains("\"local result\"")) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = &v["fields"];
        if f["message"] != "local result" {
            continue;
        }
        let (Some(p), Some(q), Some(m)) = (
            f["probe_ms"].as_f64(),
            f["queue_ms"].as_f64(),
            f["match_ms"].as_f64(),
        ) else {
            continue;
        };
        out.probe.push(p);
        out.queue.push(q);
        out.matching.push(m);
        if let (Some(id), Some(w)) = (
            f["capture_id"]
                .as_str()
                .and_then(|i| i.parse::<Uuid>().ok()),
            f["matcher_ms"].as_f64(),
        ) {
            out.matcher.insert(id, w);
        }
    }
    out
}

/// Per pool capture, the mean of its times in the passes `before` and `after` (decision and candidate from
/// `after`); a capture only `after` has keeps its time.
fn bracket_mean(
    before: &[matcher_alone::Item],
    after: &[matcher_alone::Item],
) -> Vec<matcher_alone::Item> {
    let by_index: HashMap<usize, &matcher_alone::Item> =
        before.iter().map(|i| (i.pool_index, i)).collect();
    after
        .iter()
        .map(|a| match by_index.get(&a.pool_index) {
            Some(b) => matcher_alone::Item {
                probe_ms: (a.probe_ms + b.probe_ms) / 2.0,
                decide_ms: (a.decide_ms + b.decide_ms) / 2.0,
                face_first_ms: a
                    .face_first_ms
                    .zip(b.face_first_ms)
                    .map(|(a, b)| (a + b) / 2.0),
                ..a.clone()
            },
            None => a.clone(),
        })
        .collect()
}

/// The matcher alone's two passes around a scenario: capture-to-decision ms by pool index.
struct Bracket {
    before: BTreeMap<usize, f64>,
    after: BTreeMap<usize, f64>,
}

/// Bus floor of a pattern.
#[derive(Debug, Clone, Copy)]
struct Floor {
    latency: Option<Summary>,
    drain_s: f64,
}

struct Env<'a> {
    opts: &'a Options,
    access: BrokerAccess,
    tracker: Arc<Tracker>,
    fleet: Option<Fleet>,
    echo: Option<Echo>,
    pools: &'a BTreeMap<Kind, Vec<PoolCapture>>,
    /// The matcher alone's times: its first pass, then for each kind the bracketing mean of its last scenario.
    matcher: matcher_alone::Report,
    /// The child, idle between requests to time a pool again (None once it has failed).
    child: Option<matcher_alone::Child>,
    /// Each kind's latest measured pass at each pace (back to back: its first, or the one after its last burst;
    /// paced: the one after its last sustained scenario at that pace).
    passes: HashMap<(Kind, Option<Duration>), Vec<matcher_alone::Item>>,
    floors: HashMap<String, Floor>,
    warmed: HashSet<Kind>,
    echo_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Env<'_> {
    async fn fleet(&mut self, n: usize) -> anyhow::Result<&Fleet> {
        if self.fleet.as_ref().map(Fleet::len) != Some(n) {
            if let Some(old) = self.fleet.take() {
                old.disconnect().await;
            }
            info!(stations = n, "connecting stations");
            self.fleet = Some(Fleet::connect(&self.access, n, self.tracker.clone()).await?);
        }
        self.fleet.as_ref().ok_or_else(|| anyhow!("no stations"))
    }

    fn pool(&self, kind: Kind) -> anyhow::Result<&[PoolCapture]> {
        self.pools
            .get(&kind)
            .map(Vec::as_slice)
            .ok_or_else(|| anyhow!("no pool for {}", kind.name()))
    }

    /// Two captures of `kind`, one at a time, the first time the kind is used on this gateway (not measured).
    async fn warm(&mut self, stations: usize, kind: Kind) -> anyhow::Result<()> {
        if self.warmed.contains(&kind) {
            return Ok(());
        }
        let pool: Vec<PoolCapture> = self.pool(kind)?.iter().take(3).cloned().collect();
        let tracker = self.tracker.clone();
        let fleet = self.fleet(stations).await?;
        for (i, c) in pool.iter().enumerate().skip(1) {
            tracker.begin();
            let id = Uuid::new_v4();
            fleet
                .send(&tracker, i, Target::Gateway, id, i, c.with_id(id))
                .await?;
            if !tracker.wait_all(true, IDLE_TIMEOUT).await {
                warn!(kind = %kind.name(), "warm-up capture not fully answered");
            }
        }
        self.warmed.insert(kind);
        Ok(())
    }

    async fn measure(
        &mut self,
        stack: &Stack,
        stations: usize,
        target: Target,
        kind: Kind,
        schedule: Schedule,
        delays: BTreeMap<usize, f64>,
    ) -> anyhow::Result<Measured> {
        let pool: Vec<PoolCapture> = self.pool(kind)?.to_vec();
        let tracker = self.tracker.clone();
        self.fleet(stations).await?;
        let fleet = self.fleet.as_ref().ok_or_else(|| anyhow!("no stations"))?;
        // The ideal gateway: the echo answers each capture after the matcher alone's time for it (`delays`, by
        // pool index; empty for the immediate echo and the gateway).
        let echo = self.echo.as_ref();
        let delay = |id: Uuid, i: usize| {
            if let (Some(e), Some(ms)) = (echo, delays.get(&i)) {
                e.set_delay(id, Duration::from_secs_f64(ms / 1000.0));
            }
        };
        let gw = stack.gateway.pid();
        let mut log = procs::LogFollower::from_end(&stack.gateway.log);
        tracker.begin();
        stack.sampler.reset();
        let hwm_reset = procs::reset_peak(gw);
        let mark0 = CpuMark::now(stack.pids());
        let start = tokio::time::Instant::now();
        match schedule {
            Schedule::Rate { rate, count } => {
                for k in 0..count {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / rate))
                        .await;
                    let i = k % pool.len();
                    let id = Uuid::new_v4();
                    delay(id, i);
                    fleet
                        .send(&tracker, k, target, id, i, pool[i].with_id(id))
                        .await?;
                }
            }
            Schedule::Burst => {
                // Payloads made first, so that the burst itself is only the PUBLISHes.
                let ready: Vec<(Uuid, usize, Vec<u8>)> = (0..fleet.len())
                    .map(|k| {
                        let i = k % pool.len();
                        let id = Uuid::new_v4();
                        (id, i, pool[i].with_id(id))
                    })
                    .collect();
                for (k, (id, i, payload)) in ready.into_iter().enumerate() {
                    delay(id, i);
                    fleet.send(&tracker, k, target, id, i, payload).await?;
                }
            }
        }
        let complete = tracker.wait_all(false, IDLE_TIMEOUT).await;
        let mark1 = CpuMark::now(stack.pids());
        let record = tracker.record();
        let first = record.captures.iter().map(|(s, _)| s.at).min();
        let last = record
            .captures
            .iter()
            .filter_map(|(_, a)| a.as_ref().map(|a| a.at))
            .max();
        let drain_s = match (first, last) {
            (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
            _ => 0.0,
        };
        let hwm_mib = if hwm_reset {
            procs::memory_mib(gw).map(|(_, h)| h)
        } else {
            None
        };
        let stages = match target {
            Target::Gateway => parse_stages(log.new_lines().iter().map(String::as_str)),
            Target::Echo => Stages::default(),
        };
        Ok(Measured {
            stages,
            complete,
            cpu: mark0.until(&mark1),
            rss_max_mib: stack.sampler.max_rss_mib(),
            hwm_mib,
            drain_s,
            record,
        })
    }

    /// The bus floor for `sc`'s pattern, measured once per gateway run: the same stations, payloads and schedule
    /// (sustained floors capped at `floor_captures`), answered by the echo client with `result_bytes` payloads.
    async fn floor(
        &mut self,
        stack: &Stack,
        sc: &Scenario,
        result_bytes: usize,
    ) -> anyhow::Result<Floor> {
        let (key, schedule) = match sc.pattern {
            Pattern::Sustained { rate, captures } => (
                format!("s{}-{}-r{rate}", sc.stations, sc.kind.name()),
                Schedule::Rate {
                    rate,
                    count: captures.min(self.opts.floor_captures),
                },
            ),
            _ => (
                format!("s{}-{}-burst", sc.stations, sc.kind.name()),
                Schedule::Burst,
            ),
        };
        if let Some(f) = self.floors.get(&key) {
            return Ok(*f);
        }
        let m = self
            .echo(stack, sc, result_bytes, schedule, BTreeMap::new())
            .await?;
        let lat: Vec<f64> = latencies(&m.record);
        let f = Floor {
            latency: Summary::of(&lat),
            drain_s: m.drain_s,
        };
        self.floors.insert(key, f);
        Ok(f)
    }

    /// For a sustained scenario, the ideal gateway: the echo client answering each capture after the matcher
    /// alone's time for that capture (in `baseline`), one at a time, through the same broker, stations and
    /// schedule (capped at `ideal_captures`).
    async fn ideal(
        &mut self,
        stack: &Stack,
        sc: &Scenario,
        result_bytes: usize,
        baseline: &matcher_alone::Report,
    ) -> anyhow::Result<Option<Measured>> {
        let Pattern::Sustained { rate, captures } = sc.pattern else {
            return Ok(None);
        };
        let schedule = Schedule::Rate {
            rate,
            count: captures.min(self.opts.ideal_captures),
        };
        let m = self
            .echo(
                stack,
                sc,
                result_bytes,
                schedule,
                baseline.service_ms(sc.kind),
            )
            .await?;
        Ok(Some(m))
    }

    /// `sc`'s stations and captures answered by the echo client with results of `result_bytes`, each after its
    /// pool capture's delay in `delays` (ms; none: at once).
    async fn echo(
        &mut self,
        stack: &Stack,
        sc: &Scenario,
        result_bytes: usize,
        schedule: Schedule,
        delays: BTreeMap<usize, f64>,
    ) -> anyhow::Result<Measured> {
        self.echo_bytes
            .store(result_bytes, std::sync::atomic::Ordering::Relaxed);
        if self.echo.is_none() {
            self.echo = Some(Echo::start(&self.access, self.echo_bytes.clone()).await?);
        }
        self.measure(stack, sc.stations, Target::Echo, sc.kind, schedule, delays)
            .await
    }

    async fn once(&mut self, stack: &Stack, sc: &Scenario) -> anyhow::Result<ScenarioResult> {
        self.warm(sc.stations, sc.kind).await?;
        // A sustained rate the matcher alone cannot keep up with only grows a queue: fewer captures show it.
        let mut notes = Vec::new();
        let sc = &match sc.pattern {
            Pattern::Sustained { rate, captures } => {
                let service: Vec<f64> = self.matcher.service_ms(sc.kind).into_values().collect();
                let mean_s = Summary::of(&service).map_or(0.0, |s| s.mean / 1000.0);
                let cap = self.opts.overload_captures;
                if mean_s * rate > 1.0 && captures > cap {
                    notes.push(format!(
                        "over capacity: the matcher alone needs {mean_s:.2} s per capture, more than the {:.2} s \
                         between captures, so the queue only grows; {cap} captures instead of {captures}",
                        1.0 / rate
                    ));
                    Scenario {
                        pattern: Pattern::Sustained {
                            rate,
                            captures: cap,
                        },
                        ..*sc
                    }
                } else {
                    *sc
                }
            }
            _ => *sc,
        };
        let schedule = match sc.pattern {
            Pattern::Sustained { rate, captures } => Schedule::Rate {
                rate,
                count: captures,
            },
            _ => Schedule::Burst,
        };
        // A sustained scenario's baseline leaves the same gaps between answers as its stations leave between
        // captures; a burst's answers follow each other anyway.
        let pace = match sc.pattern {
            Pattern::Sustained { rate, .. } if rate > 0.0 => {
                Some(Duration::from_secs_f64(1.0 / rate).min(MAX_PACE))
            }
            _ => None,
        };
        if let Some(p) = pace {
            self.paced_before(sc.kind, p).await;
        }
        let m = self
            .measure(
                stack,
                sc.stations,
                Target::Gateway,
                sc.kind,
                schedule,
                BTreeMap::new(),
            )
            .await?;
        // Central's answers (not timed) before anything else runs, so its work does not spill over.
        let central_done = self.tracker.wait_all(true, Duration::from_secs(60)).await;
        let central = self.tracker.record().central;
        let result_bytes = mean(
            m.record
                .captures
                .iter()
                .filter_map(|(_, a)| a.as_ref().map(|a| a.bytes as f64)),
        )
        .map_or(400, |b| b.round() as usize);
        let bracket = self.bracket(sc.kind, pace).await;
        let baseline = match &bracket {
            Some((_, baseline)) => baseline.clone(),
            None => {
                notes.push(
                    "the matcher alone could not be timed again after this scenario: its baseline is from \
                     earlier, back to back"
                        .into(),
                );
                self.matcher.clone()
            }
        };
        let floor = self.floor(stack, sc, result_bytes).await?;
        let ideal = self.ideal(stack, sc, result_bytes, &baseline).await?;
        let mut r = self.result(
            sc,
            &m,
            Some(floor),
            ideal.as_ref().map(|i| &i.record),
            bracket.as_ref().map(|(b, _)| b),
            &baseline,
        )?;
        r.matcher_alone_pace_ms = bracket.as_ref().and(pace).map(ms);
        r.central_answered = central;
        r.notes.extend(notes);
        if !central_done {
            r.notes
                .push("not every central answer arrived within 60 s".into());
        }
        Ok(r)
    }

    /// Times pool `kind` at `pace` in the matcher-alone child right before a sustained scenario, unless the pass
    /// after an earlier scenario of that kind at that pace is there to bracket it: the first pass at a pace. The
    /// child failing leaves no pass (the bracket after the scenario then says so).
    async fn paced_before(&mut self, kind: Kind, pace: Duration) {
        if self.passes.contains_key(&(kind, Some(pace))) {
            return;
        }
        info!(kind = %kind.name(), pace_ms = ms(pace), "matcher alone: paced pass before the scenario");
        if let Some(p) = self.retime(kind, Some(pace)).await {
            self.passes.insert((kind, Some(pace)), p.items);
        }
    }

    /// Times pool `kind` again in the matcher-alone child (on a blocking thread: it waits for the child's answer).
    /// None if there is no child, or it failed (it is dropped then: every later baseline stays as it is).
    async fn retime(&mut self, kind: Kind, pace: Option<Duration>) -> Option<matcher_alone::Pass> {
        let mut child = self.child.take()?;
        let (child, pass) = tokio::task::spawn_blocking(move || {
            let pass = child.retime(kind, pace);
            (child, pass)
        })
        .await
        .ok()?;
        match pass {
            Ok(p) => {
                self.child = Some(child);
                Some(p)
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "the matcher-alone child failed; baselines stay as they are");
                None
            }
        }
    }

    /// Times pool `kind` again in the matcher-alone child, right after the gateway was measured with it (at
    /// `pace`: see [`matcher_alone::Child::retime`]), and makes the mean of that pass and the one before at the same
    /// pace (the previous scenario's, the one [`Self::paced_before`] made, or for back to back the first) the
    /// baseline: the two passes bracket the gateway's measurement in time. A paced pass with none before it (the
    /// child failed then) is the baseline alone. Returns the bracket
    /// and the whole baseline for the scenario: back-to-back passes also become the run's baseline for `kind`
    /// (`self.matcher`), paced ones only this scenario's. None (baseline unchanged) if the child fails.
    async fn bracket(
        &mut self,
        kind: Kind,
        pace: Option<Duration>,
    ) -> Option<(Bracket, matcher_alone::Report)> {
        let pass = self.retime(kind, pace).await?;
        let before = match self.passes.remove(&(kind, pace)) {
            Some(b) => b,
            None if pace.is_none() => self.matcher.items_of(kind),
            None => pass.items.clone(),
        };
        let after = pass.items;
        let mean = bracket_mean(&before, &after);
        let mut cost = pass.cost;
        if let Some(b) = self.matcher.cost(kind) {
            // Per capture, the mean of the two passes' CPU (the back-to-back one's for a paced pass: the same
            // work, only spread out).
            let per = |c: &matcher_alone::KindCost| c.cpu_s / c.captures.max(1) as f64;
            cost.cpu_s = (per(&cost) + per(b)) / 2.0 * cost.captures as f64;
        }
        let baseline = if pace.is_none() {
            self.matcher.set_kind(kind, mean, cost);
            self.matcher.clone()
        } else {
            let mut b = self.matcher.clone();
            b.set_kind(kind, mean, cost);
            b
        };
        let totals = |items: &[matcher_alone::Item]| -> BTreeMap<usize, f64> {
            items.iter().map(|i| (i.pool_index, i.total_ms())).collect()
        };
        let bracket = Bracket {
            before: totals(&before),
            after: totals(&after),
        };
        self.passes.insert((kind, pace), after);
        Some((bracket, baseline))
    }

    /// The scenario's figures from a measurement.
    fn result(
        &self,
        sc: &Scenario,
        m: &Measured,
        floor: Option<Floor>,
        ideal: Option<&Record>,
        bracket: Option<&Bracket>,
        baseline: &matcher_alone::Report,
    ) -> anyhow::Result<ScenarioResult> {
        let pool = self.pool(sc.kind)?;
        let service = baseline.service_ms(sc.kind);
        let lat = latencies(&m.record);
        let latency = Summary::of(&lat);
        // The ideal run sends the same pool captures in the same order: pair them by position.
        let ideal_ms = ideal
            .map(|r| Summary::of(&latencies(r)))
            .unwrap_or_default();
        let vs_ideal: Vec<f64> = ideal
            .map(|r| {
                in_order(&m.record)
                    .into_iter()
                    .zip(in_order(r))
                    .filter_map(|(g, i)| Some(g? - i?))
                    .collect()
            })
            .unwrap_or_default();
        let gateway_ms: Vec<f64> = m
            .record
            .captures
            .iter()
            .filter_map(|(_, a)| a.as_ref().and_then(|a| a.gateway_ms).map(|v| v as f64))
            .collect();
        let matcher_ms = per_sent(&m.record, &service);
        let matcher_alone = Summary::of(&matcher_ms);
        let (matcher_before, matcher_after) = bracket
            .map(|b| {
                (
                    Summary::of(&per_sent(&m.record, &b.before)),
                    Summary::of(&per_sent(&m.record, &b.after)),
                )
            })
            .unwrap_or_default();
        let sent_parts = per_sent(&m.record, &baseline.parts_ms(sc.kind));
        let face_first = per_sent(&m.record, &baseline.face_first_ms(sc.kind));
        let cost = baseline.cost(sc.kind);
        let floor_p50 = floor.and_then(|f| f.latency).map(|l| l.p50);
        // Per answered capture: latency - its matcher time (`matcher_of`) - the bus floor's p50.
        let overhead_against = |matcher_of: &dyn Fn(&Sent) -> Option<f64>| -> Vec<f64> {
            m.record
                .captures
                .iter()
                .filter_map(|(s, a)| {
                    let a = a.as_ref()?;
                    Some(ms(a.at.duration_since(s.at)) - matcher_of(s)? - floor_p50?)
                })
                .collect()
        };
        let overhead = overhead_against(&|s| service.get(&s.pool_index).copied());
        // The run's back-to-back baseline, for comparison with a paced one.
        let warm = self.matcher.service_ms(sc.kind);
        let matcher_warm = Summary::of(&per_sent(&m.record, &warm));
        let overhead_warm = Summary::of(&overhead_against(&|s| warm.get(&s.pool_index).copied()));
        // In place: the matcher's own time as the gateway logged it for each capture.
        let own = overhead_against(&|s| m.stages.matcher.get(&s.id).copied());
        let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
        let (mut expected_hits, mut hits_found, mut false_hits) = (0, 0, 0);
        for (s, a) in &m.record.captures {
            let Some(a) = a else { continue };
            let d = a.decision.map_or("none", Decision::as_str);
            *decisions.entry(d.to_owned()).or_default() += 1;
            let expected = pool.get(s.pool_index).and_then(|p| p.subject.as_deref());
            match expected {
                Some(subject) => {
                    expected_hits += 1;
                    if a.decision == Some(Decision::Hit) && a.top.as_deref() == Some(subject) {
                        hits_found += 1;
                    }
                }
                None if a.decision == Some(Decision::Hit) => false_hits += 1,
                None => {}
            }
        }
        let answered = lat.len();
        let ratio_formula = match (latency, floor_p50, matcher_alone) {
            (Some(l), Some(f), Some(mm)) if f + mm.p50 > 0.0 => Some(l.p50 / (f + mm.p50)),
            _ => None,
        };
        let ratio = match (latency, ideal_ms) {
            (Some(l), Some(i)) if i.p50 > 0.0 => Some(l.p50 / i.p50),
            _ => None,
        };
        let mut notes = Vec::new();
        if !m.complete {
            notes.push(format!(
                "{} of {} captures unanswered after {} s without progress",
                m.record.captures.len() - answered,
                m.record.captures.len(),
                IDLE_TIMEOUT.as_secs()
            ));
        }
        let rate = match sc.pattern {
            Pattern::Sustained { rate, .. } => Some(rate),
            _ => None,
        };
        Ok(ScenarioResult {
            name: sc.name(),
            watchlist: sc.watchlist,
            stations: sc.stations,
            capture: sc.kind.name(),
            fingers: sc.kind.fingers,
            face: sc.kind.face,
            pattern: sc.pattern.name().to_owned(),
            rate_per_s: rate,
            broker: format!("{:?}", self.opts.broker).to_lowercase(),
            sent: m.record.captures.len(),
            answered,
            central_answered: 0,
            latency_ms: latency,
            gateway_internal_ms: Summary::of(&gateway_ms),
            bus_floor_ms: floor.and_then(|f| f.latency),
            matcher_alone_ms: matcher_alone,
            matcher_alone_before_ms: matcher_before,
            matcher_alone_after_ms: matcher_after,
            matcher_alone_pace_ms: None,
            matcher_alone_warm_ms: matcher_warm,
            overhead_ms: Summary::of(&overhead),
            overhead_warm_ms: overhead_warm,
            gateway_own_ms: Summary::of(&own),
            gateway_matcher_ms: Summary::of(
                &m.record
                    .captures
                    .iter()
                    .filter_map(|(s, _)| m.stages.matcher.get(&s.id).copied())
                    .collect::<Vec<_>>(),
            ),
            ideal_ms,
            overhead_vs_ideal_ms: Summary::of(&vs_ideal),
            ratio_p50: ratio,
            ratio_p50_formula: ratio_formula,
            drain_s: m.drain_s,
            bus_floor_drain_s: floor.map(|f| f.drain_s),
            gateway_probe_ms: Summary::of(&m.stages.probe),
            gateway_queue_ms: Summary::of(&m.stages.queue),
            gateway_match_ms: Summary::of(&m.stages.matching),
            matcher_probe_ms: Summary::of(&sent_parts.iter().map(|p| p.0).collect::<Vec<_>>()),
            matcher_decide_ms: Summary::of(&sent_parts.iter().map(|p| p.1).collect::<Vec<_>>()),
            matcher_face_first_ms: Summary::of(&face_first),
            matcher_alone_cpu_ms: cost
                .filter(|c| c.captures > 0)
                .map(|c| c.cpu_s * 1000.0 / c.captures as f64),
            matcher_alone_others_cores: cost.and_then(|c| c.others_cores),
            gateway_cpu_ms: m
                .cpu
                .gateway_cores
                .filter(|_| answered > 0)
                .map(|c| c * m.cpu.wall_s * 1000.0 / answered as f64),
            matcher_alone_drain_s: matcher_ms.iter().sum::<f64>() / 1000.0,
            throughput_per_s: if m.drain_s > 0.0 {
                answered as f64 / m.drain_s
            } else {
                0.0
            },
            decisions,
            expected_hits,
            hits_found,
            false_hits,
            payload_bytes_mean: mean(m.record.captures.iter().map(|(s, _)| s.bytes as f64)),
            result_bytes_mean: mean(
                m.record
                    .captures
                    .iter()
                    .filter_map(|(_, a)| a.as_ref().map(|a| a.bytes as f64)),
            ),
            cpu: m.cpu,
            gateway_rss_max_mib: m.rss_max_mib,
            gateway_hwm_mib: m.hwm_mib,
            repeats: m.record.repeats,
            ramp: None,
            notes,
        })
    }

    async fn ramp(&mut self, stack: &Stack, sc: &Scenario) -> anyhow::Result<ScenarioResult> {
        self.warm(sc.stations, sc.kind).await?;
        let service: Vec<f64> = self.matcher.service_ms(sc.kind).into_values().collect();
        let s = Summary::of(&service).ok_or_else(|| anyhow!("no matcher-alone figures"))?;
        let capacity = 1000.0 / s.mean;
        let mut ramp = RampResult {
            steps: Vec::new(),
            sustained_per_s: None,
            matcher_alone_capacity_per_s: capacity,
            ratio: None,
            skipped: None,
        };
        let mut last: Option<Measured> = None;
        if s.p99 >= RAMP_P99_LIMIT_MS {
            ramp.skipped = Some(format!(
                "the matcher alone already takes {:.0} ms p99 per capture (over {RAMP_P99_LIMIT_MS:.0} ms): no rate holds",
                s.p99
            ));
        } else {
            let plan = RampPlan {
                start: ladder_step_at_or_below(0.35 * capacity).clamp(-8, 18),
                max_steps: self.opts.ramp_max_steps,
                max_down: 2,
            };
            let mut outcomes: Vec<(i32, bool)> = Vec::new();
            loop {
                match ramp_next(plan, &outcomes) {
                    RampNext::Done(r) => {
                        ramp.sustained_per_s = r;
                        break;
                    }
                    RampNext::Run(k) => {
                        let rate = ladder_rate(k);
                        let count = self
                            .opts
                            .ramp_min_captures
                            .max((rate * self.opts.ramp_step_s).ceil() as usize);
                        info!(scenario = %sc.name(), rate, count, "ramp step");
                        let m = self
                            .measure(
                                stack,
                                sc.stations,
                                Target::Gateway,
                                sc.kind,
                                Schedule::Rate { rate, count },
                                BTreeMap::new(),
                            )
                            .await?;
                        let _ = self.tracker.wait_all(true, Duration::from_secs(30)).await;
                        let lat = Summary::of(&latencies(&m.record));
                        let answered = lat.map_or(0, |l| l.n);
                        let held =
                            answered == count && lat.is_some_and(|l| l.p99 <= RAMP_P99_LIMIT_MS);
                        ramp.steps.push(RampStep {
                            rate_per_s: rate,
                            sent: count,
                            answered,
                            latency_ms: lat,
                            achieved_per_s: if m.drain_s > 0.0 {
                                answered as f64 / m.drain_s
                            } else {
                                0.0
                            },
                            gateway_cores: m.cpu.gateway_cores,
                            others_cores: m.cpu.others_cores,
                            held,
                        });
                        outcomes.push((k, held));
                        last = Some(m);
                    }
                }
            }
            ramp.ratio = ramp.sustained_per_s.map(|r| r / capacity);
        }
        let empty = Measured {
            record: Record::default(),
            complete: true,
            cpu: CpuUse::default(),
            rss_max_mib: stack.sampler.max_rss_mib(),
            hwm_mib: None,
            drain_s: 0.0,
            stages: Stages::default(),
        };
        let m = last.unwrap_or(empty);
        let baseline = self.matcher.clone();
        let mut r = self.result(sc, &m, None, None, None, &baseline)?;
        // The headline figures of a ramp are those of its last step.
        r.ramp = Some(ramp);
        Ok(r)
    }
}

fn latencies(record: &Record) -> Vec<f64> {
    record
        .captures
        .iter()
        .filter_map(|(s, a)| a.as_ref().map(|a| ms(a.at.duration_since(s.at))))
        .collect()
}

/// The matcher alone's figure for each capture sent, in sending order (captures whose pool entry has none are
/// left out).
fn per_sent<T: Copy>(record: &Record, by_pool_index: &BTreeMap<usize, T>) -> Vec<T> {
    record
        .captures
        .iter()
        .filter_map(|(s, _)| by_pool_index.get(&s.pool_index).copied())
        .collect()
}

/// Latency of each capture in sending order (`None`: unanswered).
fn in_order(record: &Record) -> Vec<Option<f64>> {
    record
        .captures
        .iter()
        .map(|(s, a)| a.as_ref().map(|a| ms(a.at.duration_since(s.at))))
        .collect()
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in v {
        sum += x;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_bracketing_baseline_is_the_mean_of_the_two_passes_per_capture() {
        let item = |i: usize, probe: f64, decide: f64, decision: &str| matcher_alone::Item {
            kind: "2f+face".into(),
            pool_index: i,
            probe_ms: probe,
            decide_ms: decide,
            face_first_ms: Some(probe + decide + 30.0),
            decision: decision.into(),
            top: None,
        };
        let before = [item(0, 60.0, 600.0, "no_hit"), item(1, 50.0, 700.0, "hit")];
        // In another order, one capture more (index 2) and the machine slower.
        let after = [
            item(1, 70.0, 740.0, "hit"),
            item(0, 64.0, 650.0, "no_hit"),
            item(2, 10.0, 20.0, "no_hit"),
        ];
        let mean = bracket_mean(&before, &after);
        let got: Vec<(usize, f64, f64, &str)> = mean
            .iter()
            .map(|i| (i.pool_index, i.probe_ms, i.decide_ms, i.decision.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 60.0, 720.0, "hit"),
                (0, 62.0, 625.0, "no_hit"),
                (2, 10.0, 20.0, "no_hit"),
            ]
        );
        assert_eq!(mean[0].total_ms(), 780.0);
        // The face-first times are averaged the same way; a capture timed in one pass only keeps its own.
        let face_first: Vec<Option<f64>> = mean.iter().map(|i| i.face_first_ms).collect();
        assert_eq!(face_first, vec![Some(810.0), Some(717.0), Some(60.0)]);
    }

    #[test]
    fn stage_times_come_from_local_result_lines_only() {
        let log = concat!(
            r#"{"timestamp":"t","level":"INFO","fields":{"message":"capture accepted","capture_id":"a"},"target":"g"}"#,
            "\n",
            r#"{"timestamp":"t","level":"INFO","fields":{"message":"local result","capture_id":"a","latency_ms":705,"probe_ms":54,"queue_ms":0,"match_ms":640},"target":"g"}"#,
            "\n",
            r#"{"timestamp":"t","level":"INFO","fields":{"message":"central result for \"local result\"","probe_ms":1,"queue_ms":1,"match_ms":1},"target":"g"}"#,
            "\n",
            r#"{"timestamp":"t","level":"INFO","fields":{"message":"local result","capture_id":"9a1ec2a4-7a8b-4a56-9a43-2f0e6b1c7d10","latency_ms":9,"probe_ms":3,"queue_ms":2,"match_ms":4,"matcher_ms":6},"target":"g"}"#,
            "\n",
            "not json \"local result\"\n",
        );
        let s = parse_stages(log.lines());
        assert_eq!(s.probe, vec![54.0, 3.0]);
        assert_eq!(s.queue, vec![0.0, 2.0]);
        assert_eq!(s.matching, vec![640.0, 4.0]);
        // The matcher's own time, by capture, where the line has it (not before session 11).
        let b: Uuid = "9a1ec2a4-7a8b-4a56-9a43-2f0e6b1c7d10".parse().unwrap();
        assert_eq!(s.matcher, HashMap::from([(b, 6.0)]));
        // As a measurement reads them: only the lines written after it started.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.log");
        let second = log.find("\n{").unwrap() + 1;
        let third = second + log[second..].find("\n{").unwrap() + 1;
        std::fs::write(&path, &log[..third]).unwrap();
        let mut follower = procs::LogFollower::from_end(&path);
        std::fs::write(&path, log).unwrap();
        let later = parse_stages(follower.new_lines().iter().map(String::as_str));
        assert_eq!(later.probe, vec![3.0]);
        let mut missing = procs::LogFollower::from_end(&dir.path().join("missing.log"));
        assert_eq!(
            parse_stages(missing.new_lines().iter().map(String::as_str)),
            Stages::default()
        );
    }
}
