#!/usr/bin/env bash
# Compile-check cxr-mixture's `cuda` feature on a machine without a GPU or CUDA toolkit.
#
# Installs nvcc, the runtime headers, the crt headers and CCCL from PyPI wheels pinned to
# CUDA 13.0.x (the driver of the GPU we borrow) into a venv under target/ (reused across runs),
# puts nvcc on PATH and runs `cargo check -p cxr-mixture --features cuda --all-targets`.
# `cargo check` needs no CUDA libraries: cudarc loads them at run time, and our build.rs only
# runs `nvcc --ptx`. About a minute when the venv and target are warm.
#
# Environment: PYTHON (default python3), CXR_CUDA_VENV (default <repo>/target/cuda-venv),
# PIP_INDEX_URL etc. as pip reads them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CXR_CUDA_VENV:-$ROOT/target/cuda-venv}"
PYTHON="${PYTHON:-python3}"
PKGS=(
  "nvidia-cuda-nvcc==13.0.*"
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
log "$("$NVCC" --version | tail -n 1)"

cd "$ROOT"
log "cargo check -p cxr-mixture --features cuda --all-targets"
cargo check -p cxr-mixture --features cuda --all-targets
log "ok"
