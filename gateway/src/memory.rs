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
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a trim after an answer is due at `now` (a monotonic instant, so that a wall clock stepped back cannot
/// stop the trims): true at most once per [`TRIM_INTERVAL`], for the whole process. Each answer frees the face
/// networks' and the search's working buffers, which glibc keeps in the arena of whichever thread freed them;
/// trimming after answers keeps the serving process near its size at rest (`docs/benchmark.md`, "Memory"), and
/// the interval bounds its cost under a burst.
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
    use super::*;

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
