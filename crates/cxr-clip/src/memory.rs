//! Process-wide allocator settings for candle's CPU backend.
//!
//! Every candle op allocates its output afresh, and a training step frees megabytes of
//! activations at a time. With glibc's defaults those blocks are `mmap`ed and, when freed,
//! unmapped or trimmed back to the kernel, so the next step page-faults every activation in
//! again and the kernel zeroes each page: 15-20% of a ViT-B/32 CPU step went to
//! `clear_page_erms` in a profile (docs/benchmarks.md). Keeping freed memory in the process
//! removes that. Peak resident memory is unchanged; what the process holds after its peak is
//! not given back until exit.

/// glibc's largest allowed `M_MMAP_THRESHOLD` on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`):
/// blocks up to this size come from the heap and are reused; larger ones are still `mmap`ed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Tells the allocator to keep freed memory for reuse instead of returning it to the kernel.
/// Call once at the start of a program that trains or runs large CPU models (the `xtask`
/// binary and the benchmarks do). Returns whether a setting was applied: only glibc on Linux has
/// them; elsewhere this does nothing. Environment variables set by the user
/// (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`) take precedence.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = |name: &str| std::env::var_os(name).is_some();
        let mut applied = false;
        // mallopt only changes allocator tuning parameters; it is safe to call at any time from
        // any thread (glibc takes its own lock).
        #[allow(unsafe_code)]
        unsafe {
            if !user_set("MALLOC_MMAP_THRESHOLD_") {
                applied |= libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1;
            }
            if !user_set("MALLOC_TRIM_THRESHOLD_") {
                applied |= libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1;
            }
        }
        applied
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_on_glibc_linux() {
        let applied = retain_freed_memory();
        let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        let user = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
            && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some();
        assert_eq!(applied, glibc && !user);
        // Allocation and reuse still work after the change.
        let big = vec![1u8; 20 << 20];
        assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 20 << 20);
        drop(big);
        let again = vec![2u8; 20 << 20];
        assert_eq!(again[again.len() - 1], 2);
    }
}
