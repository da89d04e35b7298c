//! Allocator settings for a server that holds thousands of connections.
//!
//! glibc gives every thread that meets contention its own heap ("arena"). A connection's
//! buffers are allocated on one tokio worker and freed on another, so each arena keeps its own
//! high-water mark of freed memory: measured with 2,000 connections sending client_credentials
//! (`bench/flood.sh`, cold burst), peak RSS was 123 MiB with the default arenas and 104 MiB with
//! one, at the same throughput. Large blocks (the argon2 working memory, 19 MiB by default) are
//! always mapped on their own, so freeing them returns the memory to the system at once;
//! glibc's default raises that threshold after the first such free and then keeps them.
//!
//! An operator's own `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` wins: nothing is changed then.

/// Blocks from this size up are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Applies the settings above; call first thing in `main`, before any thread starts.
#[allow(unsafe_code)]
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var_os("GLIBC_TUNABLES").is_some()
        {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before other threads
        // exist, and a refused setting (return 0) leaves glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}
