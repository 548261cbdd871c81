#!/usr/bin/env bash
# Sourced, not run: puts the pinned CUDA 13.0 toolchain from PyPI wheels on PATH.
#
#   source scripts/ci/cuda-env.sh    # then: cxr_cuda_env <log-prefix>
#
# Installs nvcc, NVVM, the runtime headers, the crt headers and CCCL from PyPI wheels pinned to
# CUDA 13.0.x (the driver of the GPU we borrow) into a venv under target/ (reused across runs;
# pip is skipped when the pinned set is already there, so offline reruns work), then exports
# NVCC, CUDA_HOME, CUDA_PATH, CUDA_COMPUTE_CAP and prepends nvcc's folder to PATH.
#
# nvidia-nvvm must be pinned too: nvcc 13.0's wheel requires it unpinned, and NVVM 13.5 emits
# PTX ISA 9.5, which ptxas 13.0 and a CUDA 13.0 driver both reject ("Unsupported .version").
#
# Used by scripts/ci/cuda-check.sh (compile check in CI) and scripts/gpu/bundle.sh (the GPU
# bundle). Environment: PYTHON (default python3), CXR_CUDA_VENV (default
# <repo>/target/cuda-venv), CUDA_COMPUTE_CAP (default 90: the H200), PIP_INDEX_URL etc. as pip
# reads them.

CXR_CUDA_PKGS=(
  "nvidia-cuda-nvcc==13.0.*"
  "nvidia-nvvm==13.0.*"
  "nvidia-cuda-runtime==13.0.*"
  "nvidia-cuda-crt==13.0.*"
  "nvidia-cuda-cccl==13.0.*"
)

# cxr_cuda_env PREFIX: set up the venv and export the toolchain; returns non-zero on failure.
cxr_cuda_env() {
  local prefix="${1:-cuda-env}"
  local root venv python nvcc attempt
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  venv="${CXR_CUDA_VENV:-$root/target/cuda-venv}"
  python="${PYTHON:-python3}"
  _cxr_log() { printf '[%s] %s\n' "$prefix" "$*" >&2; }

  if [[ ! -x "$venv/bin/python" ]]; then
    _cxr_log "creating venv $venv"
    "$python" -m venv "$venv" || return 1
  fi

  # Skip pip when the pinned set is already there (offline reruns stay fast).
  if ! "$venv/bin/python" - "${CXR_CUDA_PKGS[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if not version(name).startswith(want.rstrip("*")):
        sys.exit(1)
PY
  then
    _cxr_log "installing ${CXR_CUDA_PKGS[*]}"
    for attempt in 1 2 3; do
      if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${CXR_CUDA_PKGS[@]}"; then
        break
      fi
      if [[ $attempt == 3 ]]; then
        _cxr_log "pip install failed three times"; return 1
      fi
      _cxr_log "pip install failed (attempt $attempt); retrying"; sleep $((attempt * 5))
    done
  fi

  nvcc="$(find "$venv" -path '*/bin/nvcc' -type f | head -n 1)"
  if [[ -z "$nvcc" ]]; then
    _cxr_log "nvcc not found in $venv after install"; return 1
  fi
  CUDA_ROOT="$(dirname "$(dirname "$nvcc")")"
  export PATH="$CUDA_ROOT/bin:$PATH"
  export NVCC="$nvcc" CUDA_HOME="$CUDA_ROOT" CUDA_PATH="$CUDA_ROOT"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  _cxr_log "$("$nvcc" --version | tail -n 1) (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
}
