//! What the build scripts of the crates with CUDA kernels (cxr-mixture, cxr-optim, cxr-ops)
//! share, each including this file with `#[path = "../../scripts/build/cuda_ptx.rs"] mod
//! cuda_ptx;`: compile one `.cu` file to PTX in `OUT_DIR` with nvcc, only under the crate's
//! `cuda` feature, so that a default build never needs the CUDA toolkit.
//!
//! `NVCC` picks the compiler (default `nvcc` on `PATH`), `CXR_CUDA_ARCH` the virtual
//! architecture (default `compute_80`; the PTX is JIT-compiled forward by the driver, so it also
//! runs on Hopper). `scripts/ci/cuda-check.sh` installs nvcc from PyPI wheels.

use std::path::PathBuf;
use std::process::Command;

/// From a build script: when the `cuda` feature is on, compiles `source` (relative to the
/// crate's root) to `$OUT_DIR/<ptx>` with `nvcc --ptx -O3 -arch=$CXR_CUDA_ARCH`, plus `flags`,
/// and tells cargo to rerun when the source, `NVCC` or `CXR_CUDA_ARCH` change. Panics with
/// what to install when nvcc is missing or fails: a build script has no other way to stop.
pub(crate) fn compile_ptx(source: &str, ptx: &str, flags: &[&str]) {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CXR_CUDA_ARCH");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(ptx);
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let arch = std::env::var("CXR_CUDA_ARCH").unwrap_or_else(|_| "compute_80".into());
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", &format!("-arch={arch}")])
        .args(flags)
        .args([source, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{nvcc} --ptx {source}` failed ({s}); see its output above"),
        Err(e) => panic!(
            "the `cuda` feature needs nvcc ({e}): install the CUDA toolkit, set NVCC, or run \
             scripts/ci/cuda-check.sh which installs nvcc from PyPI wheels"
        ),
    }
}
