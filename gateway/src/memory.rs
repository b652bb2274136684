//! The process's memory: giving what a watchlist build freed back to the system. (Tighter glibc settings for the
//! serving gateway were measured and left to the operator: `docs/benchmark.md`, "Memory".)

/// Returns the memory an index build freed to the system. The build decodes every template and prepares it in
/// temporary buffers before they are packed into the index; the allocator keeps those freed pages (a 100k-subject
/// build leaves hundreds of MiB resident that nothing uses) until asked. Linux with glibc only; elsewhere a no-op.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes no pointer and touches only glibc's own free lists, locking each arena; it is
    // safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// After an answer: gives freed memory back ([`release_freed_memory`]) if the process's resident memory is above
/// `above_bytes` ([`should_release`]); returns whether it did. Blocking (reads `/proc/self/status`). Called at most
/// once per [`TRIM_INTERVAL`] ([`trim_due`]).
pub fn release_after_answer(above_bytes: u64) -> bool {
    let release = should_release(resident_bytes(), above_bytes);
    if release {
        release_freed_memory();
    }
    release
}

/// Whether memory is given back after an answer, with `resident` bytes resident (`None`: unknown) and the
/// `memory.release_above_mib` threshold in bytes: always at 0 or when the size is unknown (the safe side for
/// memory), else only above the threshold. Each answer frees the face networks' and the search's working buffers,
/// which glibc keeps in the arena of whichever thread freed them. Giving them back keeps a large watchlist's
/// gateway near its size at rest (100k subjects: 1509-1526 MiB serving with it, 1666 MiB without; the target is
/// 1536), but the next face probe faults them in again (1k subjects: the face probe 14-18 ms slower than the
/// matcher alone's with it, 1.6-4.8 ms without): `docs/benchmark.md`, "The trim after answers". So it is done
/// only where memory matters.
pub fn should_release(resident: Option<u64>, above_bytes: u64) -> bool {
    above_bytes == 0 || resident.is_none_or(|r| r > above_bytes)
}

/// The process's resident memory (`VmRSS`), bytes; `None` where `/proc` does not say.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss_bytes(&status)
}

/// `VmRSS` of `/proc/<pid>/status` text, bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    status_kib(status, "VmRSS:")?.checked_mul(1024)
}

/// A `kB` field (`VmRSS:`, `VmHWM:`, or `MemTotal:` of `/proc/meminfo`) of `/proc` status text, in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Least time between two trims after answers ([`trim_due`]).
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a trim after an answer is due at `now` (a monotonic instant, so that a wall clock stepped back cannot
/// stop the trims): true at most once per [`TRIM_INTERVAL`], for the whole process, so that a burst pays for it
/// (and for reading the resident size, [`release_after_answer`]) at most once a second.
pub fn trim_due(now: std::time::Instant) -> bool {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let due = last.is_none_or(|t| now.saturating_duration_since(t) >= TRIM_INTERVAL);
    if due {
        *last = Some(now);
    }
    due
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn memory_is_released_only_above_the_threshold() {
        let mib = 1024 * 1024;
        assert!(should_release(Some(100 * mib), 0), "0: after every answer");
        assert!(!should_release(Some(300 * mib), 1024 * mib));
        assert!(!should_release(Some(1024 * mib), 1024 * mib));
        assert!(should_release(Some(1434 * mib), 1024 * mib));
        assert!(should_release(None, 1024 * mib), "unknown size: released");
    }

    #[test]
    fn the_resident_size_is_read_from_proc_status() {
        let status =
            "Name:\thotspot-gateway\nVmPeak:\t 3913728 kB\nVmRSS:\t  1468416 kB\nThreads:\t12\n";
        assert_eq!(vm_rss_bytes(status), Some(1_468_416 * 1024));
        assert_eq!(vm_rss_bytes("VmRSS:\tlots kB\n"), None);
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        // This process, on Linux: more than a mebibyte and less than the machine.
        if cfg!(target_os = "linux") {
            let r = resident_bytes().unwrap();
            assert!(r > 1 << 20 && r < 1 << 40, "{r}");
        }
    }

    #[test]
    fn a_trim_is_due_at_most_once_per_interval() {
        // An hour ahead: a test answering a capture meanwhile (at the real now) can neither make this first call
        // not due nor, being earlier, reset the interval.
        let t = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let ms = std::time::Duration::from_millis;
        assert!(trim_due(t));
        assert!(!trim_due(t));
        assert!(!trim_due(t + TRIM_INTERVAL - ms(1)));
        assert!(trim_due(t + TRIM_INTERVAL));
        assert!(!trim_due(t + TRIM_INTERVAL + ms(1)));
        // An earlier instant (callers racing) is never due before the interval has passed since the last trim.
        assert!(!trim_due(t));
        assert!(trim_due(t + TRIM_INTERVAL * 2));
    }
}
