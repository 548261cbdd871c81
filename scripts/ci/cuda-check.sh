#!/usr/bin/env bash
# Compile-check the `cuda` features (cxr-mixture, cxr-optim, cxr-ops) on a machine without a GPU
# or CUDA toolkit.
#
# Installs nvcc, NVVM, the runtime headers, the crt headers and CCCL from PyPI wheels pinned to
# CUDA 13.0.x (the driver of the GPU we borrow) into a venv under target/ (reused across runs),
# puts nvcc on PATH and runs `cargo check --features cuda --all-targets`: cxr-mixture alone (its
# cudarc loads the CUDA libraries at run time), then every crate with CUDA code in one build,
# as a GPU training build is (there cudarc's `fallback-dynamic-loading` yields to candle's
# `dynamic-linking`). One combined build compiles candle-kernels once (about 6 minutes on 2
# cores); separate per-crate builds resolve features differently and compile it again.
#
# `cargo check` needs no CUDA libraries (nothing is linked). Our build.rs files only run
# `nvcc --ptx`, but candle-kernels' build.rs (through cudaforge) compiles candle's kernels to
# PTX and its quantised MoE/MMQ kernels to SASS for CUDA_COMPUTE_CAP (default here 90: the
# H200; set it for another GPU, there is no nvidia-smi to ask); that needs the host C++
# compiler and is the slow part of a cold run (see docs/benchmarks.md, section cxr-optim).
#
# The venv and nvcc come from scripts/ci/cuda-env.sh (shared with scripts/gpu/bundle.sh).
# Environment: PYTHON (default python3), CXR_CUDA_VENV (default <repo>/target/cuda-venv),
# CUDA_COMPUTE_CAP (default 90), PIP_INDEX_URL etc. as pip reads them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf '[cuda-check] %s\n' "$*" >&2; }

# shellcheck source=scripts/ci/cuda-env.sh
source "$ROOT/scripts/ci/cuda-env.sh"
cxr_cuda_env cuda-check

cd "$ROOT"
log "cargo check -p cxr-mixture --features cuda --all-targets"
cargo check -p cxr-mixture --features cuda --all-targets
# Training on the GPU: candle's CUDA backend, cxr-optim's AdamW kernel, cxr-ops' fused-op
# kernels, cxr-mixture's kernels, cxr-train and xtask in one build.
log "cargo check -p cxr-ops -p cxr-optim -p cxr-train -p xtask --features cuda --all-targets (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
cargo check -p cxr-ops -p cxr-optim -p cxr-train -p xtask --features cuda --all-targets
log "ok"
