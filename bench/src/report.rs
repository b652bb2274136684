//! Results: one JSON line per scenario and per watchlist load (written as they come), the Markdown tables, the
//! targets of the issue checked against what was measured, and the SVG plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::procs::CpuUse;
use crate::scenario::{TARGET, size_name};
use crate::stats::Summary;
use crate::svg::{Panel, Series, ms_label, render};

/// Loading one watchlist size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// Subjects.
    pub watchlist: usize,
    /// Signed snapshot size, MiB.
    pub bundle_mib: f64,
    /// Gateway ready (empty) to "watchlist installed": fetch over QUIC, verify, apply, build, seal + fsync, swap, s.
    pub install_s: f64,
    /// The gateway's own figure for verify .. swap (its log's `took_ms`).
    pub install_gateway_ms: Option<u64>,
    /// Resident size right after the install, MiB.
    pub rss_after_install_mib: f64,
    /// Peak resident size from start to the end of the install, MiB.
    pub hwm_install_mib: f64,
    /// Restart with the sealed watchlist on disk: process start to ready (restore included), s.
    pub restart_to_ready_s: f64,
    /// Resident size 3 s after that restart, MiB.
    pub rss_after_restart_mib: f64,
    /// Peak resident size during that restart, MiB.
    pub hwm_restart_mib: f64,
    /// Resident size after restart per subject, KiB.
    pub kib_per_subject: f64,
    /// Matcher alone: index build from the decoded content, all cores, s.
    pub matcher_alone_build_s: f64,
    /// Matcher alone: resident with the index built, MiB.
    pub matcher_alone_rss_mib: f64,
}

/// One ramp step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RampStep {
    /// Offered rate, captures/s.
    pub rate_per_s: f64,
    /// Captures sent.
    pub sent: usize,
    /// Answered.
    pub answered: usize,
    /// Latency.
    pub latency_ms: Option<Summary>,
    /// Answered / (first send to last answer).
    pub achieved_per_s: f64,
    /// Gateway CPU, cores.
    pub gateway_cores: Option<f64>,
    /// Other people's CPU on the machine, cores.
    pub others_cores: Option<f64>,
    /// p99 at most 1 s and everything answered.
    pub held: bool,
}

/// A ramp's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RampResult {
    /// Steps in order.
    pub steps: Vec<RampStep>,
    /// Highest offered rate whose p99 stayed at most 1 s (`None`: none).
    pub sustained_per_s: Option<f64>,
    /// The matcher alone, one capture at a time: 1 / mean capture-to-decision time.
    pub matcher_alone_capacity_per_s: f64,
    /// `sustained_per_s / matcher_alone_capacity_per_s`.
    pub ratio: Option<f64>,
    /// Why no step ran.
    pub skipped: Option<String>,
}

/// One scenario's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Subjects.
    pub watchlist: usize,
    /// Stations.
    pub stations: usize,
    /// Capture kind.
    pub capture: String,
    /// Fingers per capture.
    pub fingers: u8,
    /// With a face.
    pub face: bool,
    /// `sustained`, `burst`, `ramp`.
    pub pattern: String,
    /// Sustained rate, captures/s in total.
    pub rate_per_s: Option<f64>,
    /// `embedded` or `mosquitto`.
    pub broker: String,
    /// Captures sent.
    pub sent: usize,
    /// Local results received.
    pub answered: usize,
    /// Central results received (not timed).
    pub central_answered: usize,
    /// Capture to local result at the station.
    pub latency_ms: Option<Summary>,
    /// The gateway's own `latency_ms` (receipt to result).
    pub gateway_internal_ms: Option<Summary>,
    /// Same pattern through the same broker, answered by the echo client.
    pub bus_floor_ms: Option<Summary>,
    /// The matcher alone on the same captures (capture -> decision), one at a time: since session 8, per capture
    /// the mean of the pass before the scenario and the pass right after it (`matcher_alone_before_ms`,
    /// `matcher_alone_after_ms`); before, the first pass only. Since session 11 a sustained scenario's passes
    /// leave the stations' gaps between answers (`matcher_alone_pace_ms`); before, all were back to back.
    pub matcher_alone_ms: Option<Summary>,
    /// The matcher alone's pass before the scenario (the first pass, or the one after the previous scenario of
    /// the same capture kind), on the captures sent.
    pub matcher_alone_before_ms: Option<Summary>,
    /// The matcher alone's pass timed right after the scenario, on the captures sent.
    pub matcher_alone_after_ms: Option<Summary>,
    /// The interval between the starts of the matcher alone's timed answers (a sustained scenario's 1 / rate,
    /// at most 2 s), ms; None: back to back (bursts, and every result from before session 11).
    #[serde(default)]
    pub matcher_alone_pace_ms: Option<f64>,
    /// The matcher alone back to back on the same captures (the run's latest back-to-back passes), for comparison
    /// with a paced `matcher_alone_ms`. None in results from before session 11.
    #[serde(default)]
    pub matcher_alone_warm_ms: Option<Summary>,
    /// Per capture: latency - its matcher-alone time - the bus floor's p50 (the definition).
    pub overhead_ms: Option<Summary>,
    /// `overhead_ms` against the back-to-back matcher alone (`matcher_alone_warm_ms`): what the overhead was
    /// called before session 11. None in results from before session 11.
    #[serde(default)]
    pub overhead_warm_ms: Option<Summary>,
    /// Per capture: latency - the matcher's own time as the gateway logged it for that capture (`matcher_ms` of
    /// its `local result` line: probe, search and fusion on the critical path, no queue) - the bus floor's p50.
    /// What the gateway itself adds (decoding, storage, MQTT, scheduling), whatever state the machine's caches
    /// were in. None in results from before session 11.
    #[serde(default)]
    pub gateway_own_ms: Option<Summary>,
    /// The matcher's own time in the gateway (`matcher_ms` of its log lines), ms. None before session 11.
    #[serde(default)]
    pub gateway_matcher_ms: Option<Summary>,
    /// The ideal gateway (sustained scenarios): the echo client answering each capture after the matcher alone's
    /// time for it, one at a time, through the same broker with the same stations, payloads and schedule.
    pub ideal_ms: Option<Summary>,
    /// Per capture (paired by sending order): latency - the ideal gateway's latency for the same pool capture.
    pub overhead_vs_ideal_ms: Option<Summary>,
    /// Latency p50 / ideal gateway p50.
    pub ratio_p50: Option<f64>,
    /// Latency p50 / (bus floor p50 + matcher alone p50).
    pub ratio_p50_formula: Option<f64>,
    /// First send to last local result, s.
    pub drain_s: f64,
    /// The same for the bus floor, s.
    pub bus_floor_drain_s: Option<f64>,
    /// Matcher alone, capture -> probe part (templates, face detection and embedding), ms.
    pub matcher_probe_ms: Option<Summary>,
    /// Matcher alone, probe -> decision part (1:N searches, fusion), ms.
    pub matcher_decide_ms: Option<Summary>,
    /// Matcher alone, the same captures (with fingers and a face) with the face analysed before the finger
    /// search, as until session 10, timed in the same passes (`matcher_alone_ms` is with the search running while
    /// the face is analysed), ms. None for other kinds and in results from before session 10.
    #[serde(default)]
    pub matcher_face_first_ms: Option<Summary>,
    /// The gateway's own stage times for the same captures (its `local result` log lines): the probe (templates,
    /// face), the wait for the matcher, the 1:N searches and fusion, ms. None in results from before session 8.
    pub gateway_probe_ms: Option<Summary>,
    /// See `gateway_probe_ms`.
    pub gateway_queue_ms: Option<Summary>,
    /// See `gateway_probe_ms`.
    pub gateway_match_ms: Option<Summary>,
    /// Matcher alone: CPU time per capture of this kind (all threads), ms.
    pub matcher_alone_cpu_ms: Option<f64>,
    /// Other people's work on the machine while the matcher alone was timed, cores.
    pub matcher_alone_others_cores: Option<f64>,
    /// The gateway: CPU time over the measurement per answered capture (all its threads, embedded broker
    /// included), ms.
    pub gateway_cpu_ms: Option<f64>,
    /// Sum of the matcher-alone times of the captures sent (the matcher alone answering them one after another,
    /// each in its baseline's time: paced for a sustained scenario since session 11), s.
    pub matcher_alone_drain_s: f64,
    /// Answered / drain.
    pub throughput_per_s: f64,
    /// Local decisions.
    pub decisions: BTreeMap<String, usize>,
    /// Captures of watchlist subjects.
    pub expected_hits: usize,
    /// Of those, hits naming the right subject first.
    pub hits_found: usize,
    /// Hits on captures of people not on the watchlist.
    pub false_hits: usize,
    /// Mean capture payload, bytes.
    pub payload_bytes_mean: Option<f64>,
    /// Mean local result payload, bytes.
    pub result_bytes_mean: Option<f64>,
    /// CPU over the measurement.
    pub cpu: CpuUse,
    /// Largest gateway resident size sampled, MiB.
    pub gateway_rss_max_mib: f64,
    /// Gateway peak resident size during the measurement, MiB.
    pub gateway_hwm_mib: Option<f64>,
    /// Local results received twice.
    pub repeats: usize,
    /// Ramp steps.
    pub ramp: Option<RampResult>,
    /// Anything unusual.
    pub notes: Vec<String>,
}

/// The machine, for the record.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available.
    pub cores: usize,
    /// Memory, GiB.
    pub mem_gib: f64,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Load average at start (1 min).
    pub load_at_start: f64,
}

impl Machine {
    /// Reads `/proc`.
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let mem_kib = hotspot_gateway::memory::status_kib(&meminfo, "MemTotal:").unwrap_or(0);
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            mem_gib: mem_kib as f64 / 1048576.0,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_at_start: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
        }
    }
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// JSON lines.
    pub json: PathBuf,
    /// Markdown tables.
    pub table: PathBuf,
    /// SVG plot.
    pub svg: PathBuf,
}

/// Everything measured so far.
#[derive(Debug)]
pub struct Report {
    outputs: Outputs,
    json: std::io::BufWriter<std::fs::File>,
    /// The machine.
    pub machine: Machine,
    /// The command line.
    pub command: String,
    /// Watchlist loads.
    pub loads: Vec<LoadResult>,
    /// Scenarios.
    pub results: Vec<ScenarioResult>,
    /// Run-level notes.
    pub notes: Vec<String>,
}

/// A checked target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The target.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

/// A latency figure for a table.
pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn opt_ms(s: Option<Summary>, f: impl Fn(&Summary) -> f64) -> String {
    s.map_or("-".into(), |s| fmt_ms(f(&s)))
}

fn cores(v: Option<f64>) -> String {
    v.map_or("-".into(), |c| format!("{c:.2}"))
}

impl Report {
    /// A new report; truncates the JSON file and writes the machine line.
    pub fn create(outputs: Outputs, command: String) -> anyhow::Result<Self> {
        for p in [&outputs.json, &outputs.table, &outputs.svg] {
            if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d)?;
            }
        }
        let file = std::fs::File::create(&outputs.json)
            .with_context(|| format!("creating {}", outputs.json.display()))?;
        let mut r = Self {
            outputs,
            json: std::io::BufWriter::new(file),
            machine: Machine::read(),
            command,
            loads: Vec::new(),
            results: Vec::new(),
            notes: Vec::new(),
        };
        let line = serde_json::json!({"type": "run", "command": r.command, "machine": r.machine,
            "started": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?});
        r.line(&line)?;
        Ok(r)
    }

    fn line(&mut self, v: &impl Serialize) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.json, v)?;
        self.json.write_all(b"\n")?;
        self.json.flush()?;
        Ok(())
    }

    /// Adds a watchlist load.
    pub fn add_load(&mut self, l: LoadResult) -> anyhow::Result<()> {
        let mut v = serde_json::to_value(&l)?;
        v["type"] = "load".into();
        self.line(&v)?;
        self.loads.push(l);
        Ok(())
    }

    /// Adds a scenario.
    pub fn add_result(&mut self, r: ScenarioResult) -> anyhow::Result<()> {
        let mut v = serde_json::to_value(&r)?;
        v["type"] = "scenario".into();
        self.line(&v)?;
        self.results.push(r);
        Ok(())
    }

    /// Adds a run-level note.
    pub fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    /// Adds a run-level note unless it is there already.
    pub fn note_once(&mut self, n: String) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    /// Takes the watchlist loads and scenarios of earlier runs' JSON lines (`--merge`): a load (by watchlist size)
    /// or scenario (by name) found again in a later file replaces the earlier one. Each source run is noted, with
    /// its command and start.
    pub fn merge(&mut self, files: &[std::path::PathBuf]) -> anyhow::Result<()> {
        for f in files {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            for (k, line) in text.lines().enumerate() {
                let where_ = || format!("{} line {}", f.display(), k + 1);
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{}: not JSON", where_()))?;
                match v["type"].as_str() {
                    Some("run") => self.note(format!(
                        "merged from `{}` (started {}, load average {} at start)",
                        v["command"].as_str().unwrap_or("?"),
                        v["started"].as_str().unwrap_or("?"),
                        v["machine"]["load_at_start"]
                    )),
                    Some("load") => {
                        let l: LoadResult = serde_json::from_value(v)
                            .with_context(|| format!("{}: not a watchlist load", where_()))?;
                        self.loads.retain(|o| o.watchlist != l.watchlist);
                        self.add_load(l)?;
                    }
                    Some("scenario") => {
                        let r: ScenarioResult = serde_json::from_value(v)
                            .with_context(|| format!("{}: not a scenario", where_()))?;
                        self.results.retain(|o| o.name != r.name);
                        self.add_result(r)?;
                    }
                    Some("targets") => {
                        for n in v["notes"].as_array().into_iter().flatten() {
                            if let Some(n) = n.as_str() {
                                self.note_once(n.to_owned());
                            }
                        }
                    }
                    other => bail!("{}: unknown line type {other:?}", where_()),
                }
            }
        }
        self.loads.sort_by_key(|l| l.watchlist);
        self.results.sort_by_key(|r| r.watchlist);
        Ok(())
    }

    /// The targets against what was measured.
    pub fn targets(&self) -> Vec<TargetCheck> {
        let target = self.results.iter().find(|r| r.name == TARGET);
        let mut out = Vec::new();
        out.push(match target.and_then(|t| t.latency_ms) {
            Some(l) => TargetCheck {
                target: "100 stations, 100k subjects, 2-finger + face at 1 capture/s: local answer p99 < 300 ms".into(),
                measured: format!(
                    "p99 {} ms (p50 {} ms, max {} ms, {} captures)",
                    fmt_ms(l.p99),
                    fmt_ms(l.p50),
                    fmt_ms(l.max),
                    l.n
                ),
                met: Some(l.p99 < 300.0 && target.is_some_and(|t| t.answered == t.sent)),
            },
            None => TargetCheck {
                target: "100 stations, 100k subjects, 2-finger + face at 1 capture/s: local answer p99 < 300 ms".into(),
                measured: "not measured in this run".into(),
                met: None,
            },
        });
        let overhead_target =
            "Gateway overhead over matcher alone + bus floor: < 5 ms p50".to_owned();
        let sustained: Vec<&ScenarioResult> = self
            .results
            .iter()
            .filter(|r| r.pattern == "sustained")
            .collect();
        // Both definitions (docs/benchmark.md): the formula with the immediate echo's floor, and the
        // measured ideal gateway. The target is met only when both are under 5 ms.
        let range = |f: &dyn Fn(&ScenarioResult) -> Option<f64>| {
            let v: Vec<f64> = sustained.iter().filter_map(|r| f(r)).collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (!v.is_empty()).then(|| {
                format!(
                    "{} to {} ms over {} sustained scenarios",
                    fmt_ms(lo),
                    fmt_ms(hi),
                    v.len()
                )
            })
        };
        let formula = |r: &ScenarioResult| r.overhead_ms.map(|o| o.p50);
        let vs_ideal = |r: &ScenarioResult| r.overhead_vs_ideal_ms.map(|o| o.p50);
        let in_place = |r: &ScenarioResult| r.gateway_own_ms.map(|o| o.p50);
        out.push(match target {
            Some(t) if formula(t).is_some() || vs_ideal(t).is_some() => {
                let f = formula(t);
                let i = vs_ideal(t);
                TargetCheck {
                    target: overhead_target,
                    measured: format!(
                        "target scenario: {} ms p50 by the formula (latency - matcher alone - bus floor p50), {} ms \
                         p50 against the measured ideal gateway{}{}",
                        f.map_or("-".into(), fmt_ms),
                        i.map_or("-".into(), fmt_ms),
                        range(&vs_ideal).map_or(String::new(), |r| format!("; against the ideal: {r}")),
                        range(&in_place).map_or(String::new(), |r| format!(
                            "; in place (latency - the gateway's own matcher time - bus floor p50): {r}"
                        ))
                    ),
                    met: Some(f.is_none_or(|v| v < 5.0) && i.is_none_or(|v| v < 5.0)),
                }
            }
            _ => match (range(&formula), range(&vs_ideal)) {
                (None, None) => TargetCheck {
                    target: overhead_target,
                    measured: "not measured in this run".into(),
                    met: None,
                },
                (f, i) => {
                    let worst = sustained
                        .iter()
                        .flat_map(|r| [formula(r), vs_ideal(r)])
                        .flatten()
                        .fold(f64::NEG_INFINITY, f64::max);
                    TargetCheck {
                        target: overhead_target,
                        measured: format!(
                            "target scenario not run; formula: {}; against the ideal: {}",
                            f.unwrap_or_else(|| "-".into()),
                            i.unwrap_or_else(|| "-".into())
                        ),
                        met: Some(worst < 5.0),
                    }
                }
            },
        });
        let load = self.loads.iter().find(|l| l.watchlist == 100_000);
        let running = target.map(|t| t.gateway_rss_max_mib);
        out.push(match load {
            Some(l) => {
                let worst = l.rss_after_restart_mib.max(running.unwrap_or(0.0));
                TargetCheck {
                    target: "100k-subject watchlist resident in < 1.5 GiB RSS".into(),
                    measured: format!(
                        "{:.0} MiB after a restart ({:.0} MiB serving the target scenario); {:.0} MiB after \
                         installing from central, peak {:.0} MiB during the install",
                        l.rss_after_restart_mib,
                        running.unwrap_or(f64::NAN),
                        l.rss_after_install_mib,
                        l.hwm_install_mib
                    ),
                    met: Some(worst < 1536.0),
                }
            }
            None => TargetCheck {
                target: "100k-subject watchlist resident in < 1.5 GiB RSS".into(),
                measured: "not measured in this run".into(),
                met: None,
            },
        });
        out
    }

    /// The Markdown tables.
    pub fn tables(&self) -> String {
        let mut t = String::new();
        let m = &self.machine;
        let _ = writeln!(
            t,
            "Machine: {} cores ({}), {:.1} GiB, kernel {}; load average {:.2} at start.\n",
            m.cores, m.cpu, m.mem_gib, m.kernel, m.load_at_start
        );
        if !self.loads.is_empty() {
            let _ = writeln!(t, "### Watchlist load (10 fingers + face per subject)\n");
            let _ = writeln!(
                t,
                "| watchlist | snapshot MiB | install s (gateway's own) | RSS after install MiB | peak during install MiB | restart to ready s | RSS after restart MiB | KiB/subject | matcher alone: build s, RSS MiB |"
            );
            let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|");
            for l in &self.loads {
                let _ = writeln!(
                    t,
                    "| {} | {:.1} | {:.1} ({}) | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} | {:.1}, {:.0} |",
                    size_name(l.watchlist),
                    l.bundle_mib,
                    l.install_s,
                    l.install_gateway_ms
                        .map_or("-".into(), |v| format!("{:.1}", v as f64 / 1000.0)),
                    l.rss_after_install_mib,
                    l.hwm_install_mib,
                    l.restart_to_ready_s,
                    l.rss_after_restart_mib,
                    l.kib_per_subject,
                    l.matcher_alone_build_s,
                    l.matcher_alone_rss_mib
                );
            }
            t.push('\n');
        }
        let timed: Vec<&ScenarioResult> =
            self.results.iter().filter(|r| r.ramp.is_none()).collect();
        if !timed.is_empty() {
            let _ = writeln!(
                t,
                "### Capture to local result, at the station (ms)\n\n\
                 Bus floor: the same stations, payloads and pattern through the same broker, answered at once by \
                 an echo client. Matcher alone: the same captures, capture -> decision in one process, one at a \
                 time. Ideal gateway (sustained only): the echo client answering each capture after the matcher \
                 alone's time for it, one at a time, through the same broker. Overhead: per capture, latency - the \
                 ideal's latency for the same capture; formula: latency - its matcher-alone time - the bus floor's \
                 p50. Ratio: latency p50 / ideal p50. Matcher alone: per capture, the mean of a pass timed before the \
                 scenario and one timed right after it (in brackets; runs before 2026-11-30 have the first pass only); \
                 for a sustained scenario each answer starts one interval between captures after the previous one, \
                 as the captures reach the gateway (results from before session 11: back to back). Back to back: the \
                 matcher alone answering the same captures one right after another, and the formula against it \
                 (the overhead as reported before session 11), to show how much of a latency is idle gaps' cold \
                 caches. In place: the matcher's own time as the gateway logged it for each capture (`matcher_ms`), \
                 and per capture latency - that - the bus floor's p50: what the gateway itself adds, whatever \
                 state the caches were in.\n"
            );
            let _ = writeln!(
                t,
                "| scenario | answered | p50 | p99 | max | gateway's own p50 | bus floor p50 / p99 | matcher alone p50 / p99 (p50 of the passes before, after) | ideal p50 / p99 | overhead p50 / p99 | formula p50 | ratio p50 | back to back: matcher alone p50, formula p50 | in place: matcher p50, gateway's own part p50 / p99 | hits (false) |"
            );
            let _ = writeln!(
                t,
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            );
            for r in &timed {
                let _ = writeln!(
                    t,
                    "| {} | {}/{} | {} | {} | {} | {} | {} / {} | {} / {}{} | {} / {} | {} / {} | {} | {} | {} | {}, {} / {} | {}/{} ({}) |",
                    r.name,
                    r.answered,
                    r.sent,
                    opt_ms(r.latency_ms, |s| s.p50),
                    opt_ms(r.latency_ms, |s| s.p99),
                    opt_ms(r.latency_ms, |s| s.max),
                    opt_ms(r.gateway_internal_ms, |s| s.p50),
                    opt_ms(r.bus_floor_ms, |s| s.p50),
                    opt_ms(r.bus_floor_ms, |s| s.p99),
                    opt_ms(r.matcher_alone_ms, |s| s.p50),
                    opt_ms(r.matcher_alone_ms, |s| s.p99),
                    match (r.matcher_alone_before_ms, r.matcher_alone_after_ms) {
                        (Some(b), Some(a)) => format!(" ({}, {})", fmt_ms(b.p50), fmt_ms(a.p50)),
                        _ => String::new(),
                    },
                    opt_ms(r.ideal_ms, |s| s.p50),
                    opt_ms(r.ideal_ms, |s| s.p99),
                    opt_ms(r.overhead_vs_ideal_ms, |s| s.p50),
                    opt_ms(r.overhead_vs_ideal_ms, |s| s.p99),
                    opt_ms(r.overhead_ms, |s| s.p50),
                    r.ratio_p50.map_or("-".into(), |v| format!("{v:.2}")),
                    match (r.matcher_alone_pace_ms, r.matcher_alone_warm_ms) {
                        (Some(_), Some(w)) => format!(
                            "{}, {}",
                            fmt_ms(w.p50),
                            opt_ms(r.overhead_warm_ms, |s| s.p50)
                        ),
                        _ => "(as the matcher alone)".into(),
                    },
                    opt_ms(r.gateway_matcher_ms, |s| s.p50),
                    opt_ms(r.gateway_own_ms, |s| s.p50),
                    opt_ms(r.gateway_own_ms, |s| s.p99),
                    r.hits_found,
                    r.expected_hits,
                    r.false_hits
                );
            }
            t.push('\n');
            let _ = writeln!(
                t,
                "### Throughput and resources\n\n\
                 Drain: first send to last local result; matcher alone: the sum of its times for the same captures \
                 (answering them one after another, each in the baseline's time, paced for a sustained scenario \
                 since session 11). CPU in cores over the measurement; \"others\" is the rest of the machine \
                 (other people's work on a shared machine).\n"
            );
            let _ = writeln!(
                t,
                "| scenario | drain s | matcher alone s | bus floor s | answers/s | gateway CPU | central CPU | bench CPU | others' CPU | CPU ms/capture: gateway / matcher alone (others' CPU then) | matcher alone p50: probe / decide ms | gateway p50: probe / queue / match ms | gateway RSS max MiB | payload KiB |"
            );
            let _ = writeln!(
                t,
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            );
            for r in &timed {
                let _ = writeln!(
                    t,
                    "| {} | {:.1} | {:.1} | {} | {:.2} | {} | {} | {} | {} | {} / {} ({}) | {} / {} | {} / {} / {} | {:.0} | {} |",
                    r.name,
                    r.drain_s,
                    r.matcher_alone_drain_s,
                    r.bus_floor_drain_s
                        .map_or("-".into(), |v| format!("{v:.2}")),
                    r.throughput_per_s,
                    cores(r.cpu.gateway_cores),
                    cores(r.cpu.central_cores),
                    cores(r.cpu.bench_cores),
                    cores(r.cpu.others_cores),
                    r.gateway_cpu_ms.map_or("-".into(), |v| format!("{v:.0}")),
                    r.matcher_alone_cpu_ms
                        .map_or("-".into(), |v| format!("{v:.0}")),
                    cores(r.matcher_alone_others_cores),
                    opt_ms(r.matcher_probe_ms, |s| s.p50),
                    opt_ms(r.matcher_decide_ms, |s| s.p50),
                    opt_ms(r.gateway_probe_ms, |s| s.p50),
                    opt_ms(r.gateway_queue_ms, |s| s.p50),
                    opt_ms(r.gateway_match_ms, |s| s.p50),
                    r.gateway_rss_max_mib,
                    r.payload_bytes_mean
                        .map_or("-".into(), |b| format!("{:.0}", b / 1024.0))
                );
            }
            t.push('\n');
        }
        let overlapped: Vec<&ScenarioResult> = self
            .results
            .iter()
            .filter(|r| r.matcher_face_first_ms.is_some())
            .collect();
        if !overlapped.is_empty() {
            let _ = writeln!(
                t,
                "### The finger search while the face is analysed (since session 10)\n\n\
                 The matcher alone, the same captures (fingers and a face) in the same passes, each taken to its \
                 decision twice in turns: with the face analysed first and the finger search after it (as until \
                 session 10), and with the finger search running while the face is analysed (as the gateway and the \
                 matcher alone now do). Ratio: face first p50 / overlapped p50.\n"
            );
            let _ = writeln!(
                t,
                "| scenario | face first p50 / p99 | overlapped p50 / p99 | ratio p50 | gateway p50 / p99 |"
            );
            let _ = writeln!(t, "|---|---|---|---|---|");
            for r in overlapped {
                let ratio = match (r.matcher_face_first_ms, r.matcher_alone_ms) {
                    (Some(f), Some(o)) if o.p50 > 0.0 => format!("{:.2}", f.p50 / o.p50),
                    _ => "-".into(),
                };
                let _ = writeln!(
                    t,
                    "| {} | {} / {} | {} / {} | {} | {} / {} |",
                    r.name,
                    opt_ms(r.matcher_face_first_ms, |s| s.p50),
                    opt_ms(r.matcher_face_first_ms, |s| s.p99),
                    opt_ms(r.matcher_alone_ms, |s| s.p50),
                    opt_ms(r.matcher_alone_ms, |s| s.p99),
                    ratio,
                    opt_ms(r.latency_ms, |s| s.p50),
                    opt_ms(r.latency_ms, |s| s.p99),
                );
            }
            t.push('\n');
        }
        let ramps: Vec<&ScenarioResult> =
            self.results.iter().filter(|r| r.ramp.is_some()).collect();
        if !ramps.is_empty() {
            let _ = writeln!(
                t,
                "### Captures/s sustained before p99 passes 1 s (100 stations)\n\n\
                 Steps of about 41% more captures/s each; a step holds when every capture is answered and p99 <= 1 s. \
                 Matcher alone: 1 / its mean capture-to-decision time, one capture at a time.\n"
            );
            let _ = writeln!(
                t,
                "| scenario | steps: rate -> p99 | sustained captures/s | matcher alone captures/s | ratio | gateway CPU at last step |"
            );
            let _ = writeln!(t, "|---|---|---|---|---|---|");
            for r in ramps {
                let Some(ramp) = &r.ramp else { continue };
                let steps = if let Some(why) = &ramp.skipped {
                    format!("skipped: {why}")
                } else {
                    ramp.steps
                        .iter()
                        .map(|s| {
                            format!(
                                "{:.2} -> {}{}",
                                s.rate_per_s,
                                s.latency_ms.map_or("-".into(), |l| ms_label(l.p99.round())),
                                if s.held { "" } else { " (x)" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {:.2} | {} | {} |",
                    r.name,
                    steps,
                    ramp.sustained_per_s
                        .map_or("none".into(), |v| format!("{v:.2}")),
                    ramp.matcher_alone_capacity_per_s,
                    ramp.ratio.map_or("-".into(), |v| format!("{v:.2}")),
                    cores(ramp.steps.last().and_then(|s| s.gateway_cores))
                );
            }
            t.push('\n');
        }
        let noted: Vec<&ScenarioResult> = self
            .results
            .iter()
            .filter(|r| !r.notes.is_empty())
            .collect();
        if !noted.is_empty() {
            let _ = writeln!(t, "Scenario notes:\n");
            for r in noted {
                let _ = writeln!(t, "- {}: {}", r.name, r.notes.join("; "));
            }
            t.push('\n');
        }
        let _ = writeln!(
            t,
            "### Targets\n\n| target | measured | met? |\n|---|---|---|"
        );
        for c in self.targets() {
            let _ = writeln!(
                t,
                "| {} | {} | {} |",
                c.target,
                c.measured,
                match c.met {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "-",
                }
            );
        }
        for n in &self.notes {
            let _ = writeln!(t, "\nNote: {n}");
        }
        t
    }

    /// The plot: latency against stations (2-finger + face) and against watchlist size (100 stations, 1/s).
    pub fn svg(&self) -> String {
        const SIZE_COLORS: [(usize, &str); 3] = [
            (1_000, "#1f77b4"),
            (10_000, "#ff7f0e"),
            (100_000, "#2ca02c"),
        ];
        const KIND_COLORS: [(&str, &str); 4] = [
            ("2f", "#1f77b4"),
            ("2f+face", "#d62728"),
            ("10f", "#2ca02c"),
            ("10f+face", "#9467bd"),
        ];
        let pick = |w: usize, kind: &str, pattern: &str| {
            let mut v: Vec<(f64, f64, f64)> = self
                .results
                .iter()
                .filter(|r| r.watchlist == w && r.capture == kind && r.pattern == pattern)
                .filter_map(|r| r.latency_ms.map(|l| (r.stations as f64, l.p50, l.p99)))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v
        };
        let mut by_stations = Vec::new();
        let mut stations: Vec<usize> = self.results.iter().map(|r| r.stations).collect();
        stations.sort_unstable();
        stations.dedup();
        for (w, color) in SIZE_COLORS {
            for (pattern, dashed) in [("sustained", false), ("burst", true)] {
                let pts = pick(w, "2f+face", pattern);
                if pts.is_empty() {
                    continue;
                }
                by_stations.push(Series {
                    label: format!("{} subjects, {pattern} p99", size_name(w)),
                    color: color.into(),
                    dashed,
                    points: pts.iter().map(|(x, _, p99)| (*x, *p99)).collect(),
                });
            }
        }
        let mut by_size = Vec::new();
        let mut sizes: Vec<usize> = self.results.iter().map(|r| r.watchlist).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for (kind, color) in KIND_COLORS {
            let rows: Vec<&ScenarioResult> = self
                .results
                .iter()
                .filter(|r| r.capture == kind && r.pattern == "sustained" && r.stations == 100)
                .collect();
            let series = |f: &dyn Fn(&ScenarioResult) -> Option<f64>| -> Vec<(f64, f64)> {
                let mut v: Vec<(f64, f64)> = rows
                    .iter()
                    .filter_map(|r| f(r).map(|y| (r.watchlist as f64, y)))
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v
            };
            let p50 = series(&|r| r.latency_ms.map(|l| l.p50));
            if p50.is_empty() {
                continue;
            }
            by_size.push(Series {
                label: format!("{kind} p50"),
                color: color.into(),
                dashed: false,
                points: p50,
            });
            by_size.push(Series {
                label: format!("{kind} p99"),
                color: color.into(),
                dashed: true,
                points: series(&|r| r.latency_ms.map(|l| l.p99)),
            });
            if kind == "2f+face" {
                by_size.push(Series {
                    label: "2f+face matcher alone p50".into(),
                    color: "#888".into(),
                    dashed: true,
                    points: series(&|r| r.matcher_alone_ms.map(|l| l.p50)),
                });
                by_size.push(Series {
                    label: "2f+face bus floor p50".into(),
                    color: "#bbb".into(),
                    dashed: false,
                    points: series(&|r| r.bus_floor_ms.map(|l| l.p50)),
                });
            }
        }
        let guides = vec![
            (300.0, "target p99 300 ms".to_owned()),
            (1000.0, "1 s".to_owned()),
        ];
        render(
            "hotspot-bench: capture to local result",
            &[
                Panel {
                    title: "against stations (2 fingers + face)".into(),
                    x_label: "stations (sustained: 1 capture/s in total; burst: all at once)"
                        .into(),
                    x_ticks: stations
                        .iter()
                        .map(|s| (*s as f64, s.to_string()))
                        .collect(),
                    series: by_stations,
                    guides: guides.clone(),
                },
                Panel {
                    title: "against watchlist size (100 stations, 1 capture/s)".into(),
                    x_label: "watchlist subjects (10 fingers + face each)".into(),
                    x_ticks: sizes.iter().map(|s| (*s as f64, size_name(*s))).collect(),
                    series: by_size,
                    guides,
                },
            ],
        )
    }

    /// Writes the tables and the plot (the JSON lines are written as results come).
    pub fn write_outputs(&mut self) -> anyhow::Result<()> {
        let mut tables = self.tables();
        let _ = write!(tables, "\nCommand: `{}`\n", self.command);
        std::fs::write(&self.outputs.table, tables)
            .with_context(|| format!("writing {}", self.outputs.table.display()))?;
        std::fs::write(&self.outputs.svg, self.svg())
            .with_context(|| format!("writing {}", self.outputs.svg.display()))?;
        let targets = self.targets();
        let line = serde_json::json!({"type": "targets", "targets": targets, "notes": self.notes});
        self.line(&line)?;
        Ok(())
    }

    /// Output paths.
    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn result(name: &str, p99: f64, overhead_p50: f64) -> ScenarioResult {
        let s = |v: f64| Summary {
            n: 120,
            p50: v / 2.0,
            p99: v,
            max: v * 1.1,
            mean: v / 2.0,
        };
        ScenarioResult {
            name: name.into(),
            watchlist: 100_000,
            stations: 100,
            capture: "2f+face".into(),
            fingers: 2,
            face: true,
            pattern: "sustained".into(),
            rate_per_s: Some(1.0),
            broker: "embedded".into(),
            sent: 120,
            answered: 120,
            central_answered: 120,
            latency_ms: Some(s(p99)),
            gateway_internal_ms: Some(s(p99)),
            bus_floor_ms: Some(s(2.0)),
            matcher_alone_ms: Some(s(p99 - 20.0)),
            overhead_ms: Some(Summary {
                p50: overhead_p50,
                ..s(10.0)
            }),
            ideal_ms: Some(s(p99 - 10.0)),
            overhead_vs_ideal_ms: Some(Summary {
                p50: overhead_p50 / 2.0,
                ..s(10.0)
            }),
            ratio_p50: Some(1.1),
            ratio_p50_formula: Some(1.2),
            drain_s: 120.0,
            bus_floor_drain_s: Some(119.0),
            matcher_probe_ms: Some(s(80.0)),
            matcher_decide_ms: Some(s(200.0)),
            matcher_face_first_ms: None,
            matcher_alone_before_ms: Some(s(240.0)),
            matcher_alone_after_ms: Some(s(260.0)),
            matcher_alone_pace_ms: Some(1000.0),
            matcher_alone_warm_ms: Some(s(p99 - 40.0)),
            overhead_warm_ms: Some(Summary {
                p50: overhead_p50 + 20.0,
                ..s(10.0)
            }),
            gateway_own_ms: Some(s(4.0)),
            gateway_matcher_ms: Some(s(270.0)),
            gateway_probe_ms: Some(s(55.0)),
            gateway_queue_ms: Some(s(0.0)),
            gateway_match_ms: Some(s(610.0)),
            matcher_alone_cpu_ms: Some(500.0),
            matcher_alone_others_cores: Some(0.5),
            gateway_cpu_ms: Some(560.0),
            matcher_alone_drain_s: 30.0,
            throughput_per_s: 1.0,
            decisions: BTreeMap::new(),
            expected_hits: 24,
            hits_found: 24,
            false_hits: 0,
            payload_bytes_mean: Some(300_000.0),
            result_bytes_mean: Some(300.0),
            cpu: CpuUse::default(),
            gateway_rss_max_mib: 900.0,
            gateway_hwm_mib: Some(950.0),
            repeats: 0,
            ramp: None,
            notes: vec![],
        }
    }

    fn report(dir: &std::path::Path) -> Report {
        Report::create(
            Outputs {
                json: dir.join("r.jsonl"),
                table: dir.join("t.md"),
                svg: dir.join("p.svg"),
            },
            "hotspot-bench --test".into(),
        )
        .unwrap()
    }

    #[test]
    fn merge_keeps_the_later_run_of_each_scenario_and_load() {
        let root = std::env::temp_dir().join(format!("hotspot-bench-merge-{}", std::process::id()));
        let load = |watchlist: usize, rss: f64| LoadResult {
            watchlist,
            bundle_mib: 1.0,
            install_s: 1.0,
            install_gateway_ms: Some(900),
            rss_after_install_mib: rss,
            hwm_install_mib: rss,
            restart_to_ready_s: 1.0,
            rss_after_restart_mib: rss,
            hwm_restart_mib: rss,
            kib_per_subject: 1.0,
            matcher_alone_build_s: 1.0,
            matcher_alone_rss_mib: 1.0,
        };
        let mut a = report(&root.join("a"));
        a.add_load(load(100_000, 5000.0)).unwrap();
        a.add_load(load(1000, 100.0)).unwrap();
        a.add_result(result("w100k-s100-2f+face-sustained", 900.0, 40.0))
            .unwrap();
        a.add_result(result("w100k-s10-2f+face-burst", 3000.0, 0.0))
            .unwrap();
        a.write_outputs().unwrap();
        let mut b = report(&root.join("b"));
        b.add_load(load(100_000, 1400.0)).unwrap();
        b.add_result(result("w100k-s100-2f+face-sustained", 250.0, 4.0))
            .unwrap();
        b.write_outputs().unwrap();

        let mut m = report(&root.join("m"));
        m.merge(&[root.join("a/r.jsonl"), root.join("b/r.jsonl")])
            .unwrap();
        assert_eq!(m.loads.len(), 2);
        let big = m.loads.iter().find(|l| l.watchlist == 100_000).unwrap();
        assert_eq!(big.rss_after_restart_mib, 1400.0);
        assert_eq!(m.results.len(), 2);
        let target = m
            .results
            .iter()
            .find(|r| r.name == "w100k-s100-2f+face-sustained")
            .unwrap();
        assert_eq!(target.latency_ms.unwrap().p99, 250.0);
        let sources = m.notes.iter().filter(|n| n.starts_with("merged from"));
        assert_eq!(sources.count(), 2, "{:?}", m.notes);
        m.write_outputs().unwrap();
        // The merged JSON lines hold what was merged, and merge again to the same.
        let mut again = report(&root.join("again"));
        again.merge(&[root.join("m/r.jsonl")]).unwrap();
        assert_eq!((again.loads.len(), again.results.len()), (2, 2));

        std::fs::write(root.join("bad.jsonl"), "{\"type\":\"what\"}\n").unwrap();
        let e = report(&root.join("c"))
            .merge(&[root.join("bad.jsonl")])
            .unwrap_err();
        assert!(e.to_string().contains("bad.jsonl line 1"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn targets_are_judged_on_the_measured_figures() {
        let dir = std::env::temp_dir().join(format!("hotspot-bench-report-{}", std::process::id()));
        let mut r = report(&dir);
        let t = r.targets();
        assert!(t.iter().all(|c| c.met.is_none()), "nothing measured yet");
        r.add_result(result(TARGET, 280.0, 3.0)).unwrap();
        let t = r.targets();
        assert_eq!(t[0].met, Some(true));
        assert_eq!(t[1].met, Some(true));
        r.results[0] = result(TARGET, 320.0, 7.5);
        let t = r.targets();
        assert_eq!(t[0].met, Some(false));
        assert_eq!(t[1].met, Some(false));
        assert!(
            t[1].measured.contains("7.50 ms p50 by the formula"),
            "{}",
            t[1].measured
        );
        assert!(t[1].measured.contains("3.75 ms"), "{}", t[1].measured);
        assert!(
            t[1].measured
                .contains("bus floor p50): 2.00 to 2.00 ms over 1 sustained"),
            "{}",
            t[1].measured
        );
        // Met only when both definitions are under 5 ms.
        r.results[0] = result(TARGET, 280.0, 6.0);
        assert_eq!(r.targets()[1].met, Some(false));
        r.add_load(LoadResult {
            watchlist: 100_000,
            bundle_mib: 324.0,
            install_s: 80.0,
            install_gateway_ms: Some(75_000),
            rss_after_install_mib: 5400.0,
            hwm_install_mib: 6000.0,
            restart_to_ready_s: 70.0,
            rss_after_restart_mib: 4900.0,
            hwm_restart_mib: 5200.0,
            kib_per_subject: 50.0,
            matcher_alone_build_s: 40.0,
            matcher_alone_rss_mib: 4800.0,
        })
        .unwrap();
        assert_eq!(r.targets()[2].met, Some(false));
        r.write_outputs().unwrap();
        let json = std::fs::read_to_string(dir.join("r.jsonl")).unwrap();
        let types: Vec<String> = json
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(types, ["run", "scenario", "load", "targets"]);
        let table = std::fs::read_to_string(dir.join("t.md")).unwrap();
        assert!(
            table.contains("| w100k-s100-2f+face-sustained | 120/120 | 140 | 280 | 308 |"),
            "{table}"
        );
        assert!(table.contains("**missed**"));
        // A paced baseline shows the back-to-back one next to it; one back to back shows it once.
        assert!(
            table.contains("| 120, 26.0 | 135, 2.00 / 4.00 | 24/24 (0) |"),
            "{table}"
        );
        r.results[0].matcher_alone_pace_ms = None;
        assert!(
            r.tables()
                .contains("| (as the matcher alone) | 135, 2.00 / 4.00 | 24/24 (0) |"),
            "{}",
            r.tables()
        );
        let svg = std::fs::read_to_string(dir.join("p.svg")).unwrap();
        assert!(svg.contains("2f+face p99"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_overlap_table_sets_the_face_first_order_against_the_overlapped_one() {
        let dir =
            std::env::temp_dir().join(format!("hotspot-bench-overlap-{}", std::process::id()));
        let mut r = report(&dir);
        r.add_result(result("w1k-s100-2f-sustained", 20.0, 1.0))
            .unwrap();
        assert!(
            !r.tables().contains("face first"),
            "no face-first times yet"
        );
        let mut with = result(TARGET, 300.0, 3.0);
        with.matcher_face_first_ms = Some(Summary {
            n: 120,
            p50: 175.0,
            p99: 250.0,
            max: 260.0,
            mean: 180.0,
        });
        r.add_result(with).unwrap();
        let table = r.tables();
        // Matcher alone (overlapped): p50 140, p99 280; gateway p50 150, p99 300.
        assert!(
            table.contains(
                "| w100k-s100-2f+face-sustained | 175 / 250 | 140 / 280 | 1.25 | 150 / 300 |"
            ),
            "{table}"
        );
        assert!(
            !table.contains("| w1k-s100-2f-sustained | - / -"),
            "{table}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn table_numbers_keep_three_significant_digits() {
        assert_eq!(fmt_ms(1234.4), "1234");
        assert_eq!(fmt_ms(56.78), "56.8");
        assert_eq!(fmt_ms(3.256), "3.26");
    }
}
