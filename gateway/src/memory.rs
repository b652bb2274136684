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
