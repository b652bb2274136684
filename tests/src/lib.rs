//! Harness for the end-to-end tests: real processes (central, gateway, mosquitto) on loopback, a synthetic
//! gallery, simulated stations, and a tracker that checks every capture got its answers.
//!
//! Processes are started from the binaries of this package (`e2e-gateway`, `e2e-central`: the real `main`s of
//! `hotspot-gateway` and `hotspot-central`), log to files in the test's temporary folder, and are killed when
//! dropped. Every port is chosen free at the time of the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod udp_proxy;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotspot_device_protocols::station::{
    Capture, CaptureResult, Finger, FingerFormat, Purpose, Source,
};
use hotspot_gateway::station_sim::{SimStation, new_capture};
use hotspot_gateway::synth::{SynthFinger, impression, random_finger, to_iso};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use uuid::Uuid;

/// A free TCP port on loopback (bound, read, released).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// The `ready` line it printed.
    pub ready: serde_json::Value,
    /// Its log file.
    pub log: PathBuf,
}

impl Proc {
    /// Kills it at once (kill -9) and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it at once (kill -9) and reaps it, leaving the handle (for a later replacement).
    pub fn kill9_in_place(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGTERM) and waits up to 10 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_ready(mut cmd: Command, log: PathBuf) -> Proc {
    let stderr = std::fs::File::create(&log).unwrap();
    cmd.stdout(Stdio::piped())
        .stderr(stderr)
        .stdin(Stdio::null());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["event"] == "ready"
            {
                let _ = tx.send(v);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(ready) => Proc { child, ready, log },
        Err(_) => {
            let _ = child.kill();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{cmd:?} did not become ready; its log:\n{text}");
        }
    }
}

/// Runs a CLI command to completion and returns its stdout; panics with its output if it fails.
pub fn run_cli(exe: &str, args: &[&str]) -> String {
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{exe} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Paths of the two binaries (Cargo tells them only to integration tests: use [`bins!`]).
#[derive(Debug, Clone, Copy)]
pub struct Bins {
    /// `e2e-gateway`.
    pub gateway: &'static str,
    /// `e2e-central`.
    pub central: &'static str,
}

/// The [`Bins`] of this package, from inside an integration test.
#[macro_export]
macro_rules! bins {
    () => {
        $crate::Bins {
            gateway: env!("CARGO_BIN_EXE_e2e-gateway"),
            central: env!("CARGO_BIN_EXE_e2e-central"),
        }
    };
}

/// `[uplink]` tuning for tests: fast reconnects, short request timeout.
pub const TEST_UPLINK: &str =
    "retry_initial_ms = 100\nretry_max_ms = 1000\nrequest_timeout_ms = 5000";

/// Which broker the gateway uses.
#[derive(Debug, Clone)]
pub enum BrokerSetup {
    /// Embedded rumqttd on this port.
    Embedded(u16),
    /// External broker on this port.
    External(u16),
}

impl BrokerSetup {
    /// The port stations connect to.
    pub fn port(&self) -> u16 {
        match self {
            Self::Embedded(p) | Self::External(p) => *p,
        }
    }
}

/// One test's world: a temporary folder with a PKI, central's data and a synthetic gallery.
#[derive(Debug)]
pub struct World {
    /// Temporary folder (removed on drop).
    pub dir: tempfile::TempDir,
    /// Watchlist subjects `(id, finger at position 2)`.
    pub watchlist: Vec<(String, SynthFinger)>,
    /// Subjects only central knows.
    pub central_only: Vec<(String, SynthFinger)>,
    /// The binaries.
    pub bins: Bins,
    rng: StdRng,
}

impl World {
    /// Makes the PKI (CA, central, gateway `gw-1`) and imports a gallery of 8 watchlist + 4 central-only subjects,
    /// all through the real `hotspot-central` command line.
    pub fn new(bins: Bins) -> Self {
        // HOTSPOT_E2E_KEEP=1 keeps the folder (logs, databases) for debugging.
        let keep = std::env::var_os("HOTSPOT_E2E_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix("hotspot-e2e-")
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            eprintln!("keeping {}", dir.path().display());
        }
        let d = dir.path();
        let pki = d.join("pki");
        run_cli(
            bins.central,
            &["pki", "init", "--dir", pki.to_str().unwrap()],
        );
        run_cli(
            bins.central,
            &[
                "pki",
                "issue-gateway",
                "--dir",
                pki.to_str().unwrap(),
                "--name",
                "gw-1",
            ],
        );
        // The watchlist signing key; central signs a new watchlist whenever its gallery changes (`--signing-key`).
        run_cli(
            bins.central,
            &["keys", "init", "--dir", d.join("keys").to_str().unwrap()],
        );
        let mut rng = StdRng::seed_from_u64(7);
        let (mut watchlist, mut central_only) = (Vec::new(), Vec::new());
        let mut manifest = String::new();
        for i in 0..12 {
            let id = format!("P{i:03}");
            let f = random_finger(&mut rng);
            let file = format!("{id}.iso");
            std::fs::write(d.join(&file), to_iso(&f, 2).unwrap()).unwrap();
            let lists = if i < 8 {
                r#"["watchlist"]"#
            } else {
                r#"["national"]"#
            };
            manifest.push_str(&format!(
                "{{\"subject_id\":\"{id}\",\"lists\":{lists},\"fingers\":[{{\"position\":2,\"format\":\"iso19794-2\",\"path\":\"{file}\"}}]}}\n"
            ));
            if i < 8 {
                watchlist.push((id, f))
            } else {
                central_only.push((id, f))
            }
        }
        std::fs::write(d.join("manifest.jsonl"), manifest).unwrap();
        let out = run_cli(
            bins.central,
            &[
                "watchlist",
                "import",
                "--data-dir",
                d.join("central").to_str().unwrap(),
                "--manifest",
                d.join("manifest.jsonl").to_str().unwrap(),
            ],
        );
        assert!(out.contains("12 subject(s)"), "{out}");
        Self {
            dir,
            watchlist,
            central_only,
            bins,
            rng,
        }
    }

    /// Path inside the world's folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts central on `127.0.0.1:port` (0: any) and returns it with its port.
    pub fn central(&self, port: u16) -> (Proc, u16) {
        self.central_with(port, &[])
    }

    /// As [`World::central`], with more `serve` arguments (e.g. `--models DIR`).
    pub fn central_with(&self, port: u16, extra: &[&str]) -> (Proc, u16) {
        let mut cmd = Command::new(self.bins.central);
        cmd.args(["serve", "--data-dir"])
            .arg(self.path("central"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--pki"])
            .arg(self.path("pki"))
            .arg("--signing-key")
            .arg(self.path("keys"))
            .args(extra);
        let p = spawn_ready(cmd, self.path(&format!("central-{}.log", unique())));
        let port = p.ready["listen"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        (p, port)
    }

    /// Central's report (central must be stopped).
    pub fn central_report(&self) -> serde_json::Value {
        let out = run_cli(
            self.bins.central,
            &[
                "report",
                "--data-dir",
                self.path("central").to_str().unwrap(),
            ],
        );
        serde_json::from_str(out.trim()).unwrap()
    }

    /// Writes the gateway's config and returns its path.
    pub fn gateway_config(&self, broker: &BrokerSetup, central_port: u16) -> PathBuf {
        self.gateway_config_with(broker, central_port, TEST_UPLINK, "")
    }

    /// Writes the gateway's config with `uplink` as the `[uplink]` tuning keys (e.g. [`TEST_UPLINK`]) and
    /// `storage` placed right after `storage.dir` (more `[storage]` keys, then whole sections if needed).
    pub fn gateway_config_with(
        &self,
        broker: &BrokerSetup,
        central_port: u16,
        uplink: &str,
        storage: &str,
    ) -> PathBuf {
        self.gateway_config_named("gw-1", broker, central_port, uplink, storage)
    }

    /// As [`World::gateway_config_with`] for gateway `name`: `gw-1` uses `gateway.toml` and the folder `gateway`,
    /// any other name `NAME.toml` and `NAME/` (issue its certificate first with [`World::issue_gateway`]).
    pub fn gateway_config_named(
        &self,
        name: &str,
        broker: &BrokerSetup,
        central_port: u16,
        uplink: &str,
        storage: &str,
    ) -> PathBuf {
        let (file, state) = if name == "gw-1" {
            ("gateway.toml".to_owned(), "gateway".to_owned())
        } else {
            (format!("{name}.toml"), name.to_owned())
        };
        // Stations authenticate: the embedded broker's TLS station listener is on the test's port (its plain
        // listener, the gateway's own, on another loopback port); mosquitto is reached over TLS (`mosquitto_on`).
        let broker_section = match broker {
            BrokerSetup::Embedded(p) => format!(
                "mode = \"embedded\"\nlisten = \"127.0.0.1:{}\"\ntls_listen = \"127.0.0.1:{p}\"",
                free_tcp_port()
            ),
            BrokerSetup::External(p) => {
                format!("mode = \"external\"\nurl = \"mqtts://127.0.0.1:{p}\"")
            }
        };
        let pki = self.path("pki");
        let text = format!(
            "[site]\nid = \"{name}\"\n[broker]\n{broker_section}\nretry_initial_ms = 100\nretry_max_ms = 1000\n\
             [uplink]\ncentral = \"127.0.0.1:{central_port}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n{uplink}\n\
             [watchlist]\ntrusted_keys = [\"{}\"]\n\
             [storage]\ndir = \"{}\"\n{storage}\n[console]\nlisten = \"127.0.0.1:0\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n",
            pki.join("ca.pem").display(),
            pki.join(format!("{name}.pem")).display(),
            pki.join(format!("{name}.key")).display(),
            self.public_key(),
            self.path(&state).display(),
        );
        let path = self.path(&file);
        std::fs::write(&path, text).unwrap();
        register_station_auth(
            broker.port(),
            StationAuth {
                gateway: self.bins.gateway,
                config: path.clone(),
                creds: self.path(&format!("{state}-station-creds")),
            },
        );
        path
    }

    /// `watchlist import` of `manifest` into central's data folder through the real command line; returns its output.
    pub fn import(&self, manifest: &Path) -> String {
        run_cli(
            self.bins.central,
            &[
                "watchlist",
                "import",
                "--data-dir",
                self.path("central").to_str().unwrap(),
                "--manifest",
                manifest.to_str().unwrap(),
            ],
        )
    }

    /// `fleet status`: one JSON object per gateway central has heard from.
    pub fn fleet(&self) -> Vec<serde_json::Value> {
        run_cli(
            self.bins.central,
            &[
                "fleet",
                "status",
                "--data-dir",
                self.path("central").to_str().unwrap(),
            ],
        )
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
    }

    /// Polls `fleet status` until `pred` holds or `within` passes; returns the rows that matched.
    pub async fn wait_fleet(
        &self,
        within: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let f = self.fleet();
            if pred(&f) {
                return f;
            }
            assert!(
                Instant::now() < deadline,
                "fleet view never matched: {f:#?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Issues a client certificate for another gateway.
    pub fn issue_gateway(&self, name: &str) {
        run_cli(
            self.bins.central,
            &[
                "pki",
                "issue-gateway",
                "--dir",
                self.path("pki").to_str().unwrap(),
                "--name",
                name,
            ],
        );
    }

    /// The watchlist signing key's public key (`keys/signing.pub`).
    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.path("keys/signing.pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The lines of every process log in the world's folder (`*.log`) that mention one of `needles`, each after
    /// its log's name: for failure messages, since the folder is deleted with the world.
    pub fn log_lines_mentioning(&self, needles: &[String]) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
        logs.sort();
        let mut out = String::new();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let name = log.file_name().unwrap_or_default().to_string_lossy();
            for line in text
                .lines()
                .filter(|l| needles.iter().any(|n| l.contains(n.as_str())))
            {
                out.push_str(&format!("{name}: {line}\n"));
            }
        }
        out
    }

    /// Starts the gateway with `config`.
    /// `HOTSPOT_E2E_GATEWAY_WRAPPER=PROG` starts it as `PROG GATEWAY run ...` (e.g. `scripts/mdwe-exec` to run
    /// it with memory-deny-write-execute, as systemd's `MemoryDenyWriteExecute=yes` does).
    pub fn gateway(&self, config: &Path) -> Proc {
        let mut cmd = match std::env::var_os("HOTSPOT_E2E_GATEWAY_WRAPPER") {
            Some(w) => {
                let mut c = Command::new(w);
                c.arg(self.bins.gateway);
                c
            }
            None => Command::new(self.bins.gateway),
        };
        cmd.arg("run").arg("--config").arg(config);
        spawn_ready(cmd, self.path(&format!("gateway-{}.log", unique())))
    }

    /// A capture of watchlist subject `i` (a new impression of their finger).
    pub fn watchlist_capture(&mut self, i: usize) -> Capture {
        let f = self.watchlist[i].1.clone();
        self.capture_of(&f)
    }

    /// A capture of central-only subject `i`.
    pub fn central_only_capture(&mut self, i: usize) -> Capture {
        let f = self.central_only[i].1.clone();
        self.capture_of(&f)
    }

    /// A capture of someone nobody knows.
    pub fn stranger_capture(&mut self) -> Capture {
        let f = random_finger(&mut self.rng);
        self.capture_of(&f)
    }

    /// A person nobody knows yet (their finger, to capture as often as needed).
    pub fn new_person(&mut self) -> SynthFinger {
        random_finger(&mut self.rng)
    }

    /// A screening capture of finger `f` (a new impression each time).
    pub fn capture_of(&mut self, f: &SynthFinger) -> Capture {
        let data = to_iso(&impression(f, &mut self.rng), 2).unwrap();
        new_capture(
            vec![Finger {
                position: 2,
                format: FingerFormat::Iso19794_2,
                data,
            }],
            Purpose::Screen,
        )
    }
}

fn unique() -> String {
    Uuid::new_v4().to_string()[..8].to_owned()
}

/// The face models folder (`$HOTSPOT_MODELS_DIR`, else `<repo>/models`), or `None` after saying why; with `CI`
/// set, missing models are a failure (CI fetches them with `scripts/fetch-models.sh`).
pub fn models_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HOTSPOT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
    let present = hotspot_central::models::FILES
        .iter()
        .all(|f| dir.join(f).is_file());
    if present {
        return Some(dir);
    }
    let why = format!(
        "face models not found in {}: run scripts/fetch-models.sh",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why} (CI is set)");
    eprintln!("SKIPPED: {why}");
    None
}

/// The example plugins built by `scripts/build-plugins.sh` (`HOTSPOT_PLUGINS_DIR`), or `None` after saying why;
/// with `CI` set their absence is a failure.
pub fn plugins_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HOTSPOT_PLUGINS_DIR").map(PathBuf::from);
    if let Some(d) = dir.filter(|d| d.join("vendor-decoder.wasm").is_file()) {
        return Some(d);
    }
    let why = "example plugins not found: set HOTSPOT_PLUGINS_DIR to the output of scripts/build-plugins.sh";
    assert!(std::env::var_os("CI").is_none(), "{why} (CI is set)");
    eprintln!("SKIPPED: {why}");
    None
}

/// The shared face photos folder (`../shared/data/faces`), or `None` after saying why.
pub fn faces_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/faces");
    if dir.join("faceapi-bbt").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: face photos not found in {}", dir.display());
        None
    }
}

/// How stations of the broker on one port get their credentials: the gateway whose config named that port.
#[derive(Debug, Clone)]
pub struct StationAuth {
    /// The gateway binary (`station add`).
    pub gateway: &'static str,
    /// The gateway's configuration.
    pub config: PathBuf,
    /// Where the station files go.
    pub creds: PathBuf,
}

static STATION_AUTH: std::sync::Mutex<BTreeMap<u16, StationAuth>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Remembers that stations connecting to `port` get their certificates from this gateway (every gateway config
/// written by [`World`] does this).
pub fn register_station_auth(port: u16, auth: StationAuth) {
    STATION_AUTH
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(port, auth);
}

/// The gateway that issues certificates to the stations of the broker on `port`.
pub fn station_auth(port: u16) -> Option<StationAuth> {
    STATION_AUTH
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&port)
        .cloned()
}

/// Station `id`'s TLS configuration for the broker on `port`: issued with the real `hotspot-gateway station add`
/// the first time, then reused. `None` when no gateway config names that port.
pub fn station_tls(port: u16, id: &str) -> Option<std::sync::Arc<rustls::ClientConfig>> {
    let auth = station_auth(port)?;
    if !auth.creds.join(format!("{id}.pem")).exists() {
        run_cli(
            auth.gateway,
            &[
                "station",
                "add",
                "--config",
                auth.config.to_str().unwrap(),
                "--id",
                id,
                "--out",
                auth.creds.to_str().unwrap(),
            ],
        );
    }
    Some(hotspot_gateway::stations::station_client_config(&auth.creds, id).unwrap())
}

/// Connects station `id` with its certificate (see [`station_tls`]) without waiting for anything.
pub fn station_connect(port: u16, id: &str) -> SimStation {
    SimStation::connect_with("127.0.0.1", port, id, station_tls(port, id))
}

/// Connects a station (with its certificate, see [`station_tls`]) and waits for its subscription.
pub async fn station(port: u16, id: &str) -> SimStation {
    let mut s = station_connect(port, id);
    s.ready(Duration::from_secs(20)).await.unwrap();
    s
}

/// What a station knows about each capture it sent.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Capture id -> (capture, local result, central result, last sent).
    pub captures: BTreeMap<
        Uuid,
        (
            Capture,
            Option<CaptureResult>,
            Option<CaptureResult>,
            Instant,
        ),
    >,
    /// Results seen more than once (allowed after a crash; counted for information).
    pub repeats: usize,
}

impl Tracker {
    /// Sends a capture and tracks it.
    pub async fn send(&mut self, s: &SimStation, c: Capture) {
        s.send(&c).await.unwrap();
        self.captures
            .insert(c.capture_id, (c, None, None, Instant::now()));
    }

    /// Files a result under its capture.
    pub fn record(&mut self, r: CaptureResult) {
        let Some(entry) = r.capture_id.and_then(|id| self.captures.get_mut(&id)) else {
            return;
        };
        let slot = if r.source == Source::Local {
            &mut entry.1
        } else {
            &mut entry.2
        };
        if slot.is_some() {
            self.repeats += 1;
        } else {
            *slot = Some(r);
        }
    }

    /// Whether every capture has both results.
    pub fn complete(&self) -> bool {
        self.captures
            .values()
            .all(|(_, l, c, _)| l.is_some() && c.is_some())
    }

    /// The captures still missing an answer, as `(id, has its local result, has central's)`.
    pub fn missing(&self) -> Vec<(Uuid, bool, bool)> {
        self.captures
            .iter()
            .filter(|(_, (_, l, c, _))| l.is_none() || c.is_none())
            .map(|(id, (_, l, c, _))| (*id, l.is_some(), c.is_some()))
            .collect()
    }

    /// Captures with a local result.
    pub fn locally_answered(&self) -> usize {
        self.captures
            .values()
            .filter(|(_, l, _, _)| l.is_some())
            .count()
    }

    /// Receives results until `done(self)` or the timeout; re-sends captures without an answer after `resend`
    /// (the station protocol's rule), as a real station would.
    pub async fn pump(
        &mut self,
        s: &mut SimStation,
        timeout: Duration,
        resend: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            if let Some(r) = s.next_result(Duration::from_millis(200)).await {
                self.record(r);
                continue;
            }
            let now = Instant::now();
            let stale: Vec<Capture> = self
                .captures
                .values()
                .filter(|(_, l, c, at)| {
                    (l.is_none() || c.is_none()) && now.duration_since(*at) > resend
                })
                .map(|(cap, ..)| cap.clone())
                .collect();
            for c in stale {
                if s.send(&c).await.is_ok()
                    && let Some(e) = self.captures.get_mut(&c.capture_id)
                {
                    e.3 = now;
                }
            }
        }
        done(self)
    }
}

/// A mosquitto broker with persistence, on a free port. `None` if mosquitto is not installed.
pub fn mosquitto(dir: &Path) -> Option<(Proc, u16)> {
    mosquitto_on(dir, free_tcp_port(), true)
}

/// A mosquitto broker on `port`, with or without persistence. `None` if mosquitto is not installed.
///
/// Set up as `packaging/mosquitto.conf` sets up a site broker: one TLS listener, a client certificate from the
/// station CA required of everyone (the CN is the user name and the client id), the revocation list, and the
/// shipped ACL file `packaging/mosquitto.acl`. The station CA is gateway `gw-1`'s (`dir/gateway/stations`, made
/// here if the gateway has not started yet), so start the gateway with a config from [`World::gateway_config`].
pub fn mosquitto_on(dir: &Path, port: u16, persistence: bool) -> Option<(Proc, u16)> {
    let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let data = dir.join("mosquitto");
    std::fs::create_dir_all(&data).unwrap();
    let ca = hotspot_gateway::stations::StationCa::open_or_create(
        &hotspot_gateway::stations::StationCa::dir_for(&dir.join("gateway")),
    )
    .unwrap();
    let (cert, key) = ca
        .write_broker_cert(&["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap();
    let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/mosquitto.acl");
    let conf = dir.join(format!("mosquitto-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            // `user root`: started as root (CI), mosquitto would switch to the `mosquitto` user, which cannot
            // read the certificates in the test's private folder; not root, the line is ignored.
            "user root\nper_listener_settings false\nallow_anonymous false\nacl_file {acl}\n\
             listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\ncrlfile {crl}\n\
             require_certificate true\nuse_identity_as_username true\nuse_username_as_clientid true\n\
             persistence {persistence}\n\
             persistence_location {}/\nautosave_interval 1\nmessage_size_limit 16777216\n\
             max_inflight_messages 100\nmax_queued_messages 100000\n",
            data.display(),
            acl = acl.display(),
            ca = ca.ca_path().display(),
            cert = cert.display(),
            key = key.display(),
            crl = ca.crl_path().display(),
        ),
    )
    .unwrap();
    let log = dir.join(format!("mosquitto-{}.log", unique()));
    let stderr = std::fs::File::create(&log).unwrap();
    let child = Command::new(exe)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not start; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((
        Proc {
            child,
            ready: serde_json::Value::Null,
            log,
        },
        port,
    ))
}

/// Whether mosquitto is available; in CI its absence is an error, elsewhere the caller skips with a message.
pub fn have_mosquitto() -> bool {
    let found = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .any(|p| Path::new(p).exists());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "mosquitto must be installed in CI"
    );
    if !found {
        eprintln!("skipping: mosquitto is not installed (apt-get install mosquitto)");
    }
    found
}

/// `GET path` on `addr` over plain HTTP/1.0 (the gateway's metrics listener, `gw.ready["metrics"]`: `/metrics`,
/// `/healthz`, `/api/status`; the console itself is HTTPS with login, see `tests/console.rs`); returns (status
/// code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Waits up to 10 s until the file at `path` contains every one of `needles` (the audit writer syncs in batches);
/// returns its text.
pub async fn wait_file_contains(path: &Path, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needles:?}:\n{text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the gateway's `/api/status` on its metrics listener (`gw.ready["metrics"]`) until `pred` holds or 30 s
/// pass.
pub async fn wait_status(
    console: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = http_get(console, "/api/status");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if code == 200 && pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gateway status never matched; last: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
