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

/// Least time between two trims after answers ([`trim_due`]).
pub const TRIM_INTERVAL_MS: i64 = 1_000;

/// Whether a trim after an answer is due at `now_ms` (Unix ms): true at most once per [`TRIM_INTERVAL_MS`], for
/// the whole process. Each answer frees the face networks' and the search's working buffers, which glibc keeps
/// in the arena of whichever thread freed them; trimming after answers keeps the serving process near its size at
/// rest (`docs/benchmark.md`, "Memory"), and the interval bounds its cost under a burst.
pub fn trim_due(now_ms: i64) -> bool {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let last = LAST.load(Ordering::Relaxed);
    now_ms.saturating_sub(last) >= TRIM_INTERVAL_MS
        && LAST
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_is_due_at_most_once_per_interval() {
        // The first call in this process (no other test uses the clock of this function).
        let t = 1_000_000_000_000;
        assert!(trim_due(t));
        assert!(!trim_due(t));
        assert!(!trim_due(t + TRIM_INTERVAL_MS - 1));
        assert!(trim_due(t + TRIM_INTERVAL_MS));
        assert!(!trim_due(t + TRIM_INTERVAL_MS + 1));
        // A clock stepped back does not trim again until the interval has passed since the last trim.
        assert!(!trim_due(t));
    }
}
