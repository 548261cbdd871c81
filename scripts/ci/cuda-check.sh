#!/usr/bin/env bash
# Compile-check the `cuda` features (cxr-mixture, cxr-optim) on a machine without a GPU or CUDA
# toolkit.
#
# Installs nvcc, NVVM, the runtime headers, the crt headers and CCCL from PyPI wheels pinned to
# CUDA 13.0.x (the driver of the GPU we borrow) into a venv under target/ (reused across runs),
# puts nvcc on PATH and runs `cargo check --features cuda --all-targets`: cxr-mixture alone (its
# cudarc loads the CUDA libraries at run time), then every crate with CUDA code in one build,
# as a GPU training build is (there cudarc's `fallback-dynamic-loading` yields to candle's
# `dynamic-linking`). One combined build compiles candle-kernels once (about 6 minutes on 2
# cores); separate per-crate builds resolve features differently and compile it again.
#
# nvidia-nvvm must be pinned too: nvcc 13.0's wheel requires it unpinned, and NVVM 13.5 emits
# PTX ISA 9.5, which ptxas 13.0 and a CUDA 13.0 driver both reject ("Unsupported .version").
#
# `cargo check` needs no CUDA libraries (nothing is linked). Our build.rs files only run
# `nvcc --ptx`, but candle-kernels' build.rs (through cudaforge) compiles candle's kernels to
# PTX and its quantised MoE/MMQ kernels to SASS for CUDA_COMPUTE_CAP (default here 90: the
# H200; set it for another GPU, there is no nvidia-smi to ask); that needs the host C++
# compiler and is the slow part of a cold run (see docs/benchmarks.md, section cxr-optim).
#
# Environment: PYTHON (default python3), CXR_CUDA_VENV (default <repo>/target/cuda-venv),
# CUDA_COMPUTE_CAP (default 90), PIP_INDEX_URL etc. as pip reads them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CXR_CUDA_VENV:-$ROOT/target/cuda-venv}"
PYTHON="${PYTHON:-python3}"
PKGS=(
  "nvidia-cuda-nvcc==13.0.*"
  "nvidia-nvvm==13.0.*"
  "nvidia-cuda-runtime==13.0.*"
  "nvidia-cuda-crt==13.0.*"
  "nvidia-cuda-cccl==13.0.*"
)

log() { printf '[cuda-check] %s\n' "$*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Skip pip when the pinned set is already there (offline reruns stay fast).
if ! "$VENV/bin/python" - "${PKGS[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if not version(name).startswith(want.rstrip("*")):
        sys.exit(1)
PY
then
  log "installing ${PKGS[*]}"
  for attempt in 1 2 3; do
    if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PKGS[@]}"; then
      break
    fi
    if [[ $attempt == 3 ]]; then
      log "pip install failed three times"; exit 1
    fi
    log "pip install failed (attempt $attempt); retrying"; sleep $((attempt * 5))
  done
fi

NVCC="$(find "$VENV" -path '*/bin/nvcc' -type f | head -n 1)"
if [[ -z "$NVCC" ]]; then
  log "nvcc not found in $VENV after install"; exit 1
fi
CUDA_ROOT="$(dirname "$(dirname "$NVCC")")"
export PATH="$CUDA_ROOT/bin:$PATH"
export NVCC CUDA_HOME="$CUDA_ROOT" CUDA_PATH="$CUDA_ROOT"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
log "$("$NVCC" --version | tail -n 1)"

cd "$ROOT"
log "cargo check -p cxr-mixture --features cuda --all-targets"
cargo check -p cxr-mixture --features cuda --all-targets
# Training on the GPU: candle's CUDA backend, cxr-optim's AdamW kernel, cxr-mixture's kernels,
# cxr-train and xtask in one build.
log "cargo check -p cxr-optim -p cxr-train -p xtask --features cuda --all-targets (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
cargo check -p cxr-optim -p cxr-train -p xtask --features cuda --all-targets
log "ok"
