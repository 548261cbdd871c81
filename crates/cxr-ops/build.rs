//! Compiles `src/kernels/ops.cu` to PTX with nvcc, only under the `cuda` feature: a default
//! build never needs the CUDA toolkit. `NVCC` picks the compiler (default `nvcc` on PATH),
//! `CXR_CUDA_ARCH` the virtual architecture (default `compute_80`; the PTX is JIT-compiled
//! forward by the driver, so it also runs on Hopper). As in `crates/cxr-optim/build.rs`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=src/kernels/ops.cu");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CXR_CUDA_ARCH");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ops.ptx");
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let arch = std::env::var("CXR_CUDA_ARCH").unwrap_or_else(|_| "compute_80".into());
    let status = Command::new(&nvcc)
        .args([
            "--ptx",
            "-O3",
            &format!("-arch={arch}"),
            "src/kernels/ops.cu",
            "-o",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{nvcc} --ptx src/kernels/ops.cu` failed ({s}); see its output above"),
        Err(e) => panic!(
            "the `cuda` feature needs nvcc ({e}): install the CUDA toolkit, set NVCC, or run \
             scripts/ci/cuda-check.sh which installs nvcc from PyPI wheels"
        ),
    }
}
