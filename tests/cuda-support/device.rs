//! Shared by the CUDA tests of cxr-ops and cxr-optim (`crates/*/tests/cuda.rs`, which include it
//! by `#[path]` as the fuzz tests include `tests/fuzz-support/mutate.rs`): the device or a loud
//! skip, and the test values, so that both crates' tests run and report alike.

use candle_core::Device;

/// CUDA device 0, or `None` after saying loudly that `test` did not run and so `unverified` is
/// not checked by this run. `CXR_REQUIRE_CUDA=1` makes a missing device a failure instead, as a
/// GPU job should.
pub fn cuda_or_skip(test: &str, unverified: &str) -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(
                std::env::var_os("CXR_REQUIRE_CUDA").is_none(),
                "{test}: CXR_REQUIRE_CUDA is set but no CUDA device is usable: {e}"
            );
            eprintln!(
                "\n*** SKIPPED {test}: no CUDA device ({e}). Only compiled, not run: {unverified} \
                 NOT verified by this run. ***\n"
            );
            None
        }
    }
}

/// Deterministic pseudo-random values in [-0.5, 0.5) (no RNG dependency), the same on every
/// device once rounded on the CPU.
pub fn values(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 * 12.9898 + seed * 78.233).sin() * 43758.5453).fract() - 0.5)
        .collect()
}
