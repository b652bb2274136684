//! Child processes (gateway, central, mosquitto) and what `/proc` says about them: resident memory, its peak, CPU
//! time, and the machine's CPU use (to tell how much of it other work took during a measurement).

use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use hotspot_gateway::memory::status_kib;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux fixes `USER_HZ` at 100 on every architecture the
/// gateway ships for (x86-64, arm64).
pub const TICKS_PER_S: f64 = 100.0;

/// User + system CPU time of a process, in clock ticks, from the text of `/proc/<pid>/stat`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of process `pid` so far, seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&stat).map(|t| t as f64 / TICKS_PER_S)
}

/// Resident memory and its peak (`VmRSS`, `VmHWM`) of process `pid`, MiB.
pub fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status_kib(&s, "VmRSS:")?;
    let hwm = status_kib(&s, "VmHWM:")?;
    Some((rss as f64 / 1024.0, hwm as f64 / 1024.0))
}

/// Resets `VmHWM` of process `pid` to its current resident size (Linux >= 4.0), so the next reading is the peak
/// since now. Returns whether it worked.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Busy and total CPU time of the whole machine (all cores), in ticks, from the first line of `/proc/stat`.
pub fn parse_machine_ticks(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user/nice]
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Busy CPU seconds of the whole machine so far.
pub fn machine_busy_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_ticks(&s).map(|(busy, _)| busy as f64 / TICKS_PER_S)
}

/// A child process, killed when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its log file (stderr).
    pub log: PathBuf,
    /// The `ready` JSON line it printed (`Null` for processes that print none).
    pub ready: serde_json::Value,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks it to stop (SIGTERM, through `kill`), waits up to `grace`, then kills it.
    pub fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` with stderr to `log`, and waits up to `timeout` for a JSON line `{"event": "ready", ...}` on its
/// stdout (the gateway and central print one once they listen).
pub fn spawn_ready(
    name: &str,
    mut cmd: Command,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<Proc> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdout(Stdio::piped())
        .stderr(stderr)
        .stdin(Stdio::null());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {name}: {cmd:?}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("{name}: no stdout"))?;
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
    let mut p = Proc {
        child,
        log: log.to_owned(),
        ready: serde_json::Value::Null,
    };
    match rx.recv_timeout(timeout) {
        Ok(ready) => {
            p.ready = ready;
            Ok(p)
        }
        Err(_) => {
            let tail = p.log_tail(30);
            bail!("{name} did not become ready within {timeout:?}; its log ends with:\n{tail}")
        }
    }
}

/// Starts a process that prints nothing to wait for (mosquitto), stderr to `log`.
pub fn spawn_plain(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdout(Stdio::null())
        .stderr(stderr)
        .stdin(Stdio::null());
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {name}: {cmd:?}"))?;
    Ok(Proc {
        child,
        log: log.to_owned(),
        ready: serde_json::Value::Null,
    })
}

/// Follows a growing log file from where it is now.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogFollower {
    /// Starts at the current end of `path` (0 if it does not exist yet).
    pub fn from_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Self {
            path: path.to_owned(),
            offset,
            partial: String::new(),
        }
    }

    /// Complete lines written since the last call.
    pub fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_owned).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
    }

    /// Waits up to `timeout` for a line satisfying `pred`; returns it with the instant it was seen (polled every
    /// 20 ms, so up to 20 ms late).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<(String, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            for line in self.new_lines() {
                if pred(&line) {
                    return Some((line, Instant::now()));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The processes whose CPU is counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pids {
    /// The gateway.
    pub gateway: Option<u32>,
    /// Central.
    pub central: Option<u32>,
    /// An external broker (mosquitto).
    pub broker: Option<u32>,
}

/// CPU seconds of our processes and of the machine at one instant, to difference over a measurement.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    at: Instant,
    gateway: Option<f64>,
    central: Option<f64>,
    broker: Option<f64>,
    bench: Option<f64>,
    machine: Option<f64>,
}

/// Average cores used over an interval by each party.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct CpuUse {
    /// Wall time of the interval, s.
    pub wall_s: f64,
    /// The gateway process (with the embedded broker, the broker's work is in it).
    pub gateway_cores: Option<f64>,
    /// Central (a stand-in on the same machine; a real one is remote).
    pub central_cores: Option<f64>,
    /// The external broker, when there is one.
    pub broker_cores: Option<f64>,
    /// This benchmark (stations, echo client).
    pub bench_cores: Option<f64>,
    /// The whole machine.
    pub machine_cores: Option<f64>,
    /// The machine minus the above (other people's work on a shared machine).
    pub others_cores: Option<f64>,
}

impl CpuMark {
    /// Reads the counters now.
    pub fn now(pids: Pids) -> Self {
        Self {
            at: Instant::now(),
            gateway: pids.gateway.and_then(cpu_seconds),
            central: pids.central.and_then(cpu_seconds),
            broker: pids.broker.and_then(cpu_seconds),
            bench: cpu_seconds(std::process::id()),
            machine: machine_busy_seconds(),
        }
    }

    /// Cores used between `self` and `later`.
    pub fn until(&self, later: &CpuMark) -> CpuUse {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-6);
        let d = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0) / wall);
        let (g, c, br, b, m) = (
            d(self.gateway, later.gateway),
            d(self.central, later.central),
            d(self.broker, later.broker),
            d(self.bench, later.bench),
            d(self.machine, later.machine),
        );
        let ours = [g, c, br, b].iter().map(|v| v.unwrap_or(0.0)).sum::<f64>();
        CpuUse {
            wall_s: wall,
            gateway_cores: g,
            central_cores: c,
            broker_cores: br,
            bench_cores: b,
            machine_cores: m,
            others_cores: m.map(|m| (m - ours).max(0.0)),
        }
    }
}

/// Samples a process's resident size in the background (every 200 ms): keeps the largest seen and kills the
/// process (SIGKILL) if it passes a limit, so a benchmark can never take the shared machine's memory.
#[derive(Debug)]
pub struct Sampler {
    pid: u32,
    limit_mib: f64,
    max_rss_kib: std::sync::atomic::AtomicU64,
    over: std::sync::atomic::AtomicBool,
    stop: std::sync::atomic::AtomicBool,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32, limit_mib: f64) -> std::sync::Arc<Self> {
        let s = std::sync::Arc::new(Self {
            pid,
            limit_mib,
            max_rss_kib: std::sync::atomic::AtomicU64::new(0),
            over: std::sync::atomic::AtomicBool::new(false),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let t = s.clone();
        std::thread::spawn(move || t.sample());
        s
    }

    fn sample(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        while !self.stop.load(Relaxed) {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
                && let Some(kib) = status_kib(&text, "VmRSS:")
            {
                self.max_rss_kib.fetch_max(kib, Relaxed);
                if kib as f64 / 1024.0 > self.limit_mib {
                    self.over.store(true, Relaxed);
                    let _ = Command::new("kill")
                        .arg("-KILL")
                        .arg(self.pid.to_string())
                        .status();
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Largest resident size seen since the last [`Sampler::reset`], MiB.
    pub fn max_rss_mib(&self) -> f64 {
        self.max_rss_kib.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
    }

    /// Starts a new maximum.
    pub fn reset(&self) {
        self.max_rss_kib
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the limit was passed (and the process killed).
    pub fn over_limit(&self) -> bool {
        self.over.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops sampling.
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_survive_odd_process_names() {
        let line = "4242 (hotspot gw) (x)) S 1 4242 4242 0 -1 4194560 12 0 0 0 150 37 0 0 20 0 9 0 1234 \
                    567 89 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line), Some(187));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        // Our own process has a readable stat.
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn status_fields_in_kib() {
        let s = "Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(s, "VmRSS:"), Some(102_400));
        assert_eq!(status_kib(s, "VmHWM:"), Some(204_800));
        assert_eq!(status_kib(s, "VmSwap:"), None);
        let (rss, hwm) = memory_mib(std::process::id()).unwrap();
        assert!(rss > 0.0 && hwm >= rss);
    }

    #[test]
    fn machine_ticks_leave_out_idle_and_iowait() {
        let s = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_machine_ticks(s), Some((161, 1181)));
        assert_eq!(parse_machine_ticks("intr 1 2 3"), None);
    }

    #[test]
    fn log_follower_returns_only_complete_new_lines() {
        let dir = std::env::temp_dir().join(format!("hotspot-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut f = LogFollower::from_end(&path);
        assert!(f.new_lines().is_empty());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        use std::io::Write as _;
        write!(file, "one\ntw").unwrap();
        assert_eq!(f.new_lines(), vec!["one".to_owned()]);
        writeln!(file, "o").unwrap();
        let (line, _) = f
            .wait_for(Duration::from_millis(200), |l| l.starts_with("tw"))
            .unwrap();
        assert_eq!(line, "two");
        assert!(f.wait_for(Duration::from_millis(50), |_| true).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
