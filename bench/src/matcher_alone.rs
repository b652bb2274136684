//! The matcher-alone baseline, run in a child process (`hotspot-bench matcher-alone`) so that its index is freed
//! with the process and never resident at the same time as the gateway's: the same signed snapshot the gateway
//! installs, built into the same index by the gateway's own [`Watchlist::build`], then every capture of the pools
//! taken from its JSON to a decision (`probe_from_capture` + `decide`, the gateway's local-answer path without
//! storage or MQTT), one at a time.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use hotspot_device_protocols::bundle::{MAX_BUNDLE_BYTES, WatchlistContent, decode_unverified};
use hotspot_device_protocols::station::decode_capture;
use hotspot_gateway::watchlist::Watchlist;
use hotspot_matcher::probe::{decide, probe_from_capture};
use serde::{Deserialize, Serialize};

use crate::procs::{CpuMark, Pids};
use crate::workload::{Kind, PoolCapture};

/// One capture taken to a decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// Capture kind name.
    pub kind: String,
    /// Index in its pool.
    pub pool_index: usize,
    /// Capture -> probe (template parsing, face detection and embedding), ms.
    pub probe_ms: f64,
    /// Probe -> decision (1:N searches and fusion), ms.
    pub decide_ms: f64,
    /// The decision.
    pub decision: String,
    /// Best candidate.
    pub top: Option<String>,
}

impl Item {
    /// Capture to decision, ms.
    pub fn total_ms(&self) -> f64 {
        self.probe_ms + self.decide_ms
    }
}

/// What the child measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Subjects indexed.
    pub subjects: usize,
    /// Reading and decoding the snapshot, s.
    pub decode_s: f64,
    /// Building the indexes (all cores), s.
    pub build_s: f64,
    /// Resident size with the index built (content dropped), MiB.
    pub rss_mib: f64,
    /// Peak resident size, MiB.
    pub hwm_mib: f64,
    /// Every capture, in pool order, per kind.
    pub items: Vec<Item>,
    /// CPU per kind.
    pub costs: Vec<KindCost>,
}

/// What one kind's pool cost the matcher alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindCost {
    /// Capture kind name.
    pub kind: String,
    /// Captures timed.
    pub captures: usize,
    /// Wall time, s.
    pub wall_s: f64,
    /// CPU time of the process (all threads), s.
    pub cpu_s: f64,
    /// Other work on the machine meanwhile, cores.
    pub others_cores: Option<f64>,
}

impl Report {
    /// What `kind`'s pool cost.
    pub fn cost(&self, kind: Kind) -> Option<&KindCost> {
        let name = kind.name();
        self.costs.iter().find(|c| c.kind == name)
    }

    /// `(probe ms, decide ms)` of pool `kind`, by pool index.
    pub fn parts_ms(&self, kind: Kind) -> BTreeMap<usize, (f64, f64)> {
        let name = kind.name();
        self.items
            .iter()
            .filter(|i| i.kind == name)
            .map(|i| (i.pool_index, (i.probe_ms, i.decide_ms)))
            .collect()
    }

    /// Capture-to-decision times of pool `kind`, by pool index.
    pub fn service_ms(&self, kind: Kind) -> BTreeMap<usize, f64> {
        let name = kind.name();
        self.items
            .iter()
            .filter(|i| i.kind == name)
            .map(|i| (i.pool_index, i.total_ms()))
            .collect()
    }
}

/// Writes the pools as `kind<TAB>index<TAB>payload` lines (payloads are compact JSON, one line each).
pub fn write_pool_file(
    path: &Path,
    pools: &BTreeMap<Kind, Vec<PoolCapture>>,
) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for (kind, pool) in pools {
        for (i, c) in pool.iter().enumerate() {
            write!(f, "{}\t{i}\t", kind.name())?;
            f.write_all(&c.with_id(uuid::Uuid::new_v4()))?;
            writeln!(f)?;
        }
    }
    f.flush()?;
    Ok(())
}

/// Runs the measurement in this process (the `matcher-alone` subcommand) and returns the report.
pub fn measure(bundle: &Path, pool: &Path, models: &Path) -> anyhow::Result<Report> {
    let t = Instant::now();
    let bytes = std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let payload = decode_unverified(&bytes, MAX_BUNDLE_BYTES)?;
    drop(bytes);
    let content = WatchlistContent::default()
        .apply(&payload)
        .map_err(|e| anyhow!("snapshot does not apply: {e}"))?;
    drop(payload);
    let decode_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let installed = Watchlist::build(&content, crate::now_ms())?;
    let build_s = t.elapsed().as_secs_f64();
    drop(content);
    let (rss_mib, hwm_mib) = crate::procs::memory_mib(std::process::id()).unwrap_or_default();
    let engine = hotspot_central::models::load_face_engine(models)?;
    let mut captures: Vec<(String, usize, Vec<u8>)> = Vec::new();
    let f = std::fs::File::open(pool).with_context(|| format!("reading {}", pool.display()))?;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        let mut parts = line.splitn(3, '\t');
        let (Some(kind), Some(i), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("malformed pool line");
        };
        captures.push((kind.to_owned(), i.parse()?, json.as_bytes().to_vec()));
    }
    let mut items = Vec::with_capacity(captures.len());
    let mut costs: Vec<KindCost> = Vec::new();
    let mut kinds: Vec<String> = captures.iter().map(|(k, _, _)| k.clone()).collect();
    kinds.dedup();
    for kind in kinds {
        let these: Vec<_> = captures
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, i, json)| {
                decode_capture(json)
                    .map(|c| (*i, c))
                    .map_err(|e| anyhow!("pool capture: {}", e.reason))
            })
            .collect::<anyhow::Result<_>>()?;
        // Warm caches and lazily built state, as the gateway's warm-up captures do.
        if let Some((_, c)) = these.first() {
            for _ in 0..2 {
                if let Ok(p) = probe_from_capture(c, Some(&engine)) {
                    std::hint::black_box(decide(installed.gallery(), &p));
                }
            }
        }
        let mark = CpuMark::now(Pids::default());
        for (i, capture) in &these {
            let item = time_one(&kind, *i, capture, &engine, &installed)?;
            items.push(item);
        }
        let cpu = mark.until(&CpuMark::now(Pids::default()));
        costs.push(KindCost {
            kind,
            captures: these.len(),
            wall_s: cpu.wall_s,
            cpu_s: cpu.bench_cores.unwrap_or(f64::NAN) * cpu.wall_s,
            others_cores: cpu.others_cores,
        });
    }
    Ok(Report {
        subjects: installed.subjects,
        decode_s,
        build_s,
        rss_mib,
        hwm_mib,
        items,
        costs,
    })
}

/// One capture taken to a decision, timed.
fn time_one(
    kind: &str,
    i: usize,
    capture: &hotspot_device_protocols::station::Capture,
    engine: &hotspot_matcher::face::FaceEngine,
    installed: &hotspot_gateway::watchlist::Installed,
) -> anyhow::Result<Item> {
    {
        let t = Instant::now();
        let probe = probe_from_capture(capture, Some(engine)).map_err(|e| anyhow!("probe: {e}"))?;
        let probe_ms = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let outcome = decide(installed.gallery(), &probe);
        let decide_ms = t.elapsed().as_secs_f64() * 1000.0;
        Ok(Item {
            kind: kind.to_owned(),
            pool_index: i,
            probe_ms,
            decide_ms,
            decision: outcome.decision.as_str().to_owned(),
            top: outcome.candidates.first().map(|c| c.subject_id.clone()),
        })
    }
}

/// Runs [`measure`] in a child process of this executable; its log goes to `log`.
pub fn run_child(bundle: &Path, pool: &Path, models: &Path, log: &Path) -> anyhow::Result<Report> {
    let exe: PathBuf = std::env::current_exe()?;
    let stderr = std::fs::File::create(log)?;
    let out = Command::new(exe)
        .arg("matcher-alone")
        .arg("--bundle")
        .arg(bundle)
        .arg("--pool")
        .arg(pool)
        .arg("--models")
        .arg(models)
        .stdin(Stdio::null())
        .stderr(stderr)
        .output()
        .context("starting the matcher-alone child")?;
    if !out.status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        bail!("matcher-alone child failed ({}):\n{text}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("matcher-alone child output")
}
