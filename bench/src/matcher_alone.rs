//! The matcher-alone baseline, run in a child process (`hotspot-bench matcher-alone`) so that its memory is
//! its own and freed with the process: the same signed snapshot the gateway installs, built into the same index by
//! the gateway's own [`Watchlist::build`], then every capture of the pools taken from its JSON to a decision
//! ([`answer`]: the gateway's local-answer path without storage or MQTT, its finger search overlapping the face's
//! analysis as the gateway's does for a screening capture with both), one at a time. The
//! child stays up, idle, while the gateway is measured, and times a pool again on request ([`Child::retime`]), so
//! that each scenario's baseline brackets it in time.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use hotspot_device_protocols::bundle::{MAX_BUNDLE_BYTES, WatchlistContent, decode_unverified};
use hotspot_device_protocols::station::{Capture, decode_capture};
use hotspot_gateway::watchlist::Watchlist;
use hotspot_matcher::probe::{
    Gallery, Outcome, decide, decide_with, probe_face, probe_fingers, probe_from_capture,
    search_fingers,
};
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
    /// Capture -> probe (template parsing, face detection and embedding), ms. With a face, the finger search
    /// runs meanwhile.
    pub probe_ms: f64,
    /// Probe -> decision (what is left of the 1:N searches, and the fusion), ms.
    pub decide_ms: f64,
    /// The same capture to its decision with the face analysed before the finger search starts, as until
    /// session 10 (`probe_from_capture` + `decide`), timed next to it (the two in turns, the first alternating
    /// with the pool index), ms; only for captures with fingers and a face.
    #[serde(default)]
    pub face_first_ms: Option<f64>,
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
    /// CPU time of the process (all threads) for answering each capture once, s: since session 10 a capture
    /// with fingers and a face is answered twice, both ways (`Item::face_first_ms`), with the same work each
    /// time, so the pass's CPU is scaled by captures / answers. (Runs 12 and 13 of `docs/benchmark.md` were made
    /// before this scaling: their matcher-alone CPU per capture counts both answers.)
    pub cpu_s: f64,
    /// Other work on the machine meanwhile, cores.
    pub others_cores: Option<f64>,
}

impl Report {
    /// Replaces pool `kind`'s times and cost (the bracketing baseline of a scenario).
    pub fn set_kind(&mut self, kind: Kind, items: Vec<Item>, cost: KindCost) {
        let name = kind.name();
        self.items.retain(|i| i.kind != name);
        self.items.extend(items);
        self.costs.retain(|c| c.kind != name);
        self.costs.push(cost);
    }

    /// Pool `kind`'s items.
    pub fn items_of(&self, kind: Kind) -> Vec<Item> {
        let name = kind.name();
        self.items
            .iter()
            .filter(|i| i.kind == name)
            .cloned()
            .collect()
    }

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

    /// Capture-to-decision times of pool `kind` with the face analysed before the finger search (captures with
    /// both only), by pool index.
    pub fn face_first_ms(&self, kind: Kind) -> BTreeMap<usize, f64> {
        let name = kind.name();
        self.items
            .iter()
            .filter(|i| i.kind == name)
            .filter_map(|i| Some((i.pool_index, i.face_first_ms?)))
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

/// One more timing of a kind's pool, asked for while the benchmark runs (see [`Child::retime`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pass {
    /// The pool's captures, in pool order.
    pub items: Vec<Item>,
    /// What the pass cost.
    pub cost: KindCost,
}

/// The matcher-alone side, ready to time any of its pools (index built, face engine loaded, captures decoded).
struct Prepared {
    installed: hotspot_gateway::watchlist::Installed,
    engine: hotspot_matcher::face::FaceEngine,
    /// Per kind name, in pool-file order: (pool index, capture).
    kinds: Vec<(String, Vec<(usize, Capture)>)>,
}

impl Prepared {
    /// Times every capture of pool `kind` once, one at a time, after two warm-up captures; with a `pace`, each
    /// timed answer starts that long after the previous one started (as a sustained scenario's captures reach the
    /// gateway), else right after it (back to back).
    fn time_kind(&self, kind: &str, pace: Option<Duration>) -> anyhow::Result<Pass> {
        let these = self
            .kinds
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, c)| c)
            .ok_or_else(|| anyhow!("no pool of kind {kind}"))?;
        // Warm caches and lazily built state, as the gateway's warm-up captures do.
        if let Some((_, c)) = these.first() {
            for _ in 0..2 {
                std::hint::black_box(answer(c, &self.engine, self.installed.gallery()).ok());
            }
        }
        let mut pacer = Pacer::new(pace);
        let mark = CpuMark::now(Pids::default());
        let mut items = Vec::with_capacity(these.len());
        for (i, capture) in these {
            items.push(time_one(
                kind,
                *i,
                capture,
                &self.engine,
                &self.installed,
                &mut pacer,
            )?);
        }
        let cpu = mark.until(&CpuMark::now(Pids::default()));
        let answers: usize = items
            .iter()
            .map(|i| 1 + usize::from(i.face_first_ms.is_some()))
            .sum();
        let cost = KindCost {
            kind: kind.to_owned(),
            captures: these.len(),
            wall_s: cpu.wall_s,
            cpu_s: cpu.bench_cores.unwrap_or(f64::NAN) * cpu.wall_s * these.len() as f64
                / answers.max(1) as f64,
            others_cores: cpu.others_cores,
        };
        Ok(Pass { items, cost })
    }
}

/// The `matcher-alone` subcommand: builds the index, times every pool once (back to back) and prints the
/// [`Report`] as one JSON line; then, for each request read on stdin (one per line: a kind name, then optionally
/// a pace in microseconds, [`Child::retime`]), times that pool again and prints a [`Pass`] line, until stdin
/// closes.
pub fn child_main(bundle: &Path, pool: &Path, models: &Path) -> anyhow::Result<()> {
    let (prepared, report) = measure(bundle, pool, models)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&report)?)?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (kind, pace) = parse_request(&line)?;
        let pass = prepared.time_kind(kind, pace)?;
        writeln!(out, "{}", serde_json::to_string(&pass)?)?;
        out.flush()?;
    }
    Ok(())
}

/// Builds the matcher alone's index and times every pool once.
fn measure(bundle: &Path, pool: &Path, models: &Path) -> anyhow::Result<(Prepared, Report)> {
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
    let mut kinds: Vec<(String, Vec<(usize, Capture)>)> = Vec::new();
    let f = std::fs::File::open(pool).with_context(|| format!("reading {}", pool.display()))?;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        let mut parts = line.splitn(3, '\t');
        let (Some(kind), Some(i), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("malformed pool line");
        };
        let capture =
            decode_capture(json.as_bytes()).map_err(|e| anyhow!("pool capture: {}", e.reason))?;
        let entry = (i.parse()?, capture);
        match kinds.last_mut() {
            Some((k, v)) if k == kind => v.push(entry),
            _ => kinds.push((kind.to_owned(), vec![entry])),
        }
    }
    let prepared = Prepared {
        installed,
        engine,
        kinds,
    };
    let mut items = Vec::new();
    let mut costs = Vec::new();
    for (kind, _) in &prepared.kinds {
        let pass = prepared.time_kind(kind, None)?;
        items.extend(pass.items);
        costs.push(pass.cost);
    }
    let report = Report {
        subjects: prepared.installed.subjects,
        decode_s,
        build_s,
        rss_mib,
        hwm_mib,
        items,
        costs,
    };
    Ok((prepared, report))
}

/// Starts timed answers at a pace: each one `pace` after the previous one started (sleeping meanwhile), or at
/// once without a pace. On this benchmark's shared machines an answer after a second of idleness takes much
/// longer than one right after another (the face analysis of a small photo 40 ms back to back, 70-90 ms a
/// second apart; the caches hold other people's data by then), so a baseline for a sustained scenario must leave
/// the same gaps as its stations do (`docs/benchmark.md`, "Idle gaps").
struct Pacer {
    pace: Option<Duration>,
    last: Option<Instant>,
}

impl Pacer {
    fn new(pace: Option<Duration>) -> Self {
        Self { pace, last: None }
    }

    /// How long after `now` the next answer is due.
    fn due_in(&self, now: Instant) -> Duration {
        match (self.pace, self.last) {
            (Some(pace), Some(last)) => pace.saturating_sub(now.saturating_duration_since(last)),
            _ => Duration::ZERO,
        }
    }

    /// Sleeps until the next answer is due, and marks its start.
    fn wait(&mut self) {
        let left = self.due_in(Instant::now());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
        self.last = Some(Instant::now());
    }
}

/// A request line of the child's stdin: `KIND` (back to back) or `KIND PACE_US`.
fn parse_request(line: &str) -> anyhow::Result<(&str, Option<Duration>)> {
    let mut words = line.split_whitespace();
    let kind = words
        .next()
        .ok_or_else(|| anyhow!("empty matcher-alone request"))?;
    let pace = words
        .next()
        .map(|us| {
            us.parse::<u64>()
                .map(Duration::from_micros)
                .map_err(|e| anyhow!("matcher-alone request {line:?}: pace: {e}"))
        })
        .transpose()?;
    if words.next().is_some() {
        bail!("matcher-alone request {line:?}: more than a kind and a pace");
    }
    Ok((kind, pace))
}

/// One capture taken to a decision, timed; with fingers and a face, also with the face analysed first. Every timed
/// answer waits for `pacer` first.
fn time_one(
    kind: &str,
    i: usize,
    capture: &Capture,
    engine: &hotspot_matcher::face::FaceEngine,
    installed: &hotspot_gateway::watchlist::Installed,
    pacer: &mut Pacer,
) -> anyhow::Result<Item> {
    let both = capture.face.is_some() && !capture.fingers.is_empty();
    let face_first = |pacer: &mut Pacer| -> anyhow::Result<f64> {
        pacer.wait();
        let t = Instant::now();
        let probe = probe_from_capture(capture, Some(engine)).map_err(|e| anyhow!("probe: {e}"))?;
        std::hint::black_box(decide(installed.gallery(), &probe));
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    let before = if both && i % 2 == 1 {
        Some(face_first(pacer)?)
    } else {
        None
    };
    pacer.wait();
    let t = Instant::now();
    let (outcome, probed) =
        answer(capture, engine, installed.gallery()).map_err(|e| anyhow!("probe: {e}"))?;
    let total_ms = t.elapsed().as_secs_f64() * 1000.0;
    let probe_ms = probed.as_secs_f64() * 1000.0;
    let face_first_ms = match before {
        Some(ms) => Some(ms),
        None if both => Some(face_first(pacer)?),
        None => None,
    };
    Ok(Item {
        kind: kind.to_owned(),
        pool_index: i,
        probe_ms,
        decide_ms: total_ms - probe_ms,
        face_first_ms,
        decision: outcome.decision.as_str().to_owned(),
        top: outcome.candidates.first().map(|c| c.subject_id.clone()),
    })
}

/// `capture` to its decision as the gateway answers a screening capture: fingers probed, then the finger search
/// (rayon, every core) on a thread of its own while this one analyses the face, then the fusion. Also returns the
/// time from the start to the probe being whole.
fn answer(
    capture: &Capture,
    engine: &hotspot_matcher::face::FaceEngine,
    gallery: Gallery<'_>,
) -> Result<(Outcome, std::time::Duration), String> {
    let t = Instant::now();
    let mut probe = probe_fingers(capture)?;
    let (face, found, probed) = if capture.face.is_some() && !probe.fingers.is_empty() {
        let fingers = &probe.fingers;
        std::thread::scope(|s| {
            let search = s.spawn(move || search_fingers(gallery, fingers));
            let face = probe_face(capture, Some(engine));
            let probed = t.elapsed();
            let found = search
                .join()
                .map_err(|_| "the finger search panicked".to_owned())?;
            Ok::<_, String>((face, found, probed))
        })?
    } else {
        let face = probe_face(capture, Some(engine));
        let probed = t.elapsed();
        (face, search_fingers(gallery, &probe.fingers), probed)
    };
    probe.add_face(face?);
    Ok((decide_with(gallery, &probe, found), probed))
}

/// The matcher-alone child process, kept running (idle, its index resident) while the benchmark runs, so that a
/// pool can be timed again right after the gateway was measured with it ([`Child::retime`]): the same code on the
/// same machine minutes apart differs by up to about 10% here, which is more than the overhead being measured.
pub struct Child {
    process: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    log: PathBuf,
}

/// Starts the child; returns its first report (every pool timed once) and the child, waiting for requests.
pub fn start_child(
    bundle: &Path,
    pool: &Path,
    models: &Path,
    log: &Path,
) -> anyhow::Result<(Report, Child)> {
    let exe: PathBuf = std::env::current_exe()?;
    let stderr = std::fs::File::create(log)?;
    let mut process = Command::new(exe)
        .arg("matcher-alone")
        .arg("--bundle")
        .arg(bundle)
        .arg("--pool")
        .arg(pool)
        .arg("--models")
        .arg(models)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("starting the matcher-alone child")?;
    let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
        let _ = process.kill();
        let _ = process.wait();
        bail!("matcher-alone child without pipes");
    };
    let mut child = Child {
        process,
        stdin: Some(stdin),
        stdout: std::io::BufReader::new(stdout),
        log: log.to_owned(),
    };
    let report = child.read_line()?;
    Ok((report, child))
}

impl Child {
    /// Times pool `kind` again (two warm-up captures, then each capture once), in the child: back to back, or
    /// each timed answer `pace` after the previous one started.
    pub fn retime(&mut self, kind: Kind, pace: Option<Duration>) -> anyhow::Result<Pass> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("matcher-alone child closed"))?;
        match pace {
            Some(p) => writeln!(stdin, "{} {}", kind.name(), p.as_micros())?,
            None => writeln!(stdin, "{}", kind.name())?,
        }
        stdin.flush()?;
        self.read_line()
    }

    fn read_line<T: serde::de::DeserializeOwned>(&mut self) -> anyhow::Result<T> {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line)?;
        if n == 0 {
            let status = self.process.wait()?;
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!("matcher-alone child failed ({status}):\n{text}");
        }
        serde_json::from_str(&line).context("matcher-alone child output")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Closing stdin ends the child; it holds nothing that needs a clean exit.
        drop(self.stdin.take());
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_name_a_kind_and_optionally_a_pace() {
        assert_eq!(parse_request("2f+face").unwrap(), ("2f+face", None));
        assert_eq!(
            parse_request("10f 1000000\n").unwrap(),
            ("10f", Some(Duration::from_secs(1)))
        );
        for bad in ["", "2f -5", "2f 1.5", "2f 10 20"] {
            let e = parse_request(bad).unwrap_err().to_string();
            assert!(e.contains("matcher-alone request"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_pacer_starts_each_answer_a_pace_after_the_last_one_started() {
        let ms = Duration::from_millis;
        let now = Instant::now();
        let mut paced = Pacer::new(Some(ms(30)));
        assert_eq!(
            paced.due_in(now),
            Duration::ZERO,
            "the first answer waits for nothing"
        );
        paced.last = Some(now);
        assert_eq!(paced.due_in(now + ms(10)), ms(20));
        assert_eq!(paced.due_in(now + ms(30)), Duration::ZERO);
        assert_eq!(
            paced.due_in(now + ms(45)),
            Duration::ZERO,
            "a late answer starts at once"
        );
        let mut eager = Pacer::new(None);
        eager.last = Some(now);
        assert_eq!(eager.due_in(now), Duration::ZERO);
        // And `wait` sleeps what `due_in` says: two waits a pace apart take at least the pace.
        let mut real = Pacer::new(Some(ms(20)));
        real.wait();
        let t = Instant::now();
        real.wait();
        assert!(t.elapsed() >= ms(19));
    }
}
