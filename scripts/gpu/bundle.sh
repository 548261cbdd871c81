#!/usr/bin/env bash
# Build the self-contained GPU bundle, target/gpu-bundle/ (see docs/gpu.md).
#
#   bash scripts/gpu/bundle.sh
#
# 1. nvcc 13.0 from pinned PyPI wheels (scripts/ci/cuda-env.sh, shared with CI's cuda-check.sh);
# 2. a copy of the working tree (tracked and untracked-but-not-ignored files; with
#    CXR_BUNDLE_FROM=HEAD the last commit instead) under target/gpu-build/src, so the build neither rewrites this checkout's Cargo.lock nor fights
#    other builds for target/: it has its own CARGO_TARGET_DIR, target/gpu-build/target;
# 3. cudarc patched to load the CUDA libraries at run time: candle-core 0.11's `cuda` feature
#    asks cudarc for `dynamic-linking`, which puts libcuda / libcublas / libcurand / libnvrtc in
#    the binary's NEEDED list, so it would not even start without them. cudarc's Rust code
#    only ever tests `dynamic-loading`; `dynamic-linking` acts in its build.rs alone (link
#    flags, and it suppresses `fallback-dynamic-loading`). The copy of cudarc's registry source
#    under target/gpu-build/cudarc-<version> gets a build.rs in which `dynamic-linking` is inert,
#    and the build applies it with `--config patch.crates-io.cudarc.path=...`: the workspace's
#    Cargo.toml and Cargo.lock stay as they are, and only this build is affected;
#    The CUDA runtime that candle-kernels' MoE kernels link is linked statically (a linker
#    script on LIBRARY_PATH), so no CUDA library at all is needed to start the binary;
# 4. `cargo build --release -p xtask --features cuda` for CUDA_COMPUTE_CAP (default 90, the H200);
# 5. strip, xz, and lay out target/gpu-bundle/: xtask.xz, check.sh, reference.py, MANIFEST.
#    Fails if the bundle exceeds CXR_BUNDLE_MAX_MIB (default 48).
#
# Environment: CUDA_COMPUTE_CAP, CXR_CUDA_VENV, PYTHON (scripts/ci/cuda-env.sh), CXR_BUNDLE_FROM
# (worktree, the default, or HEAD),
# CXR_GPU_BUILD (default <repo>/target/gpu-build), CXR_GPU_BUNDLE (default
# <repo>/target/gpu-bundle), CXR_BUNDLE_MAX_MIB (default 48), CARGO_BUILD_JOBS as cargo reads it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${CXR_GPU_BUILD:-$ROOT/target/gpu-build}"
BUNDLE="${CXR_GPU_BUNDLE:-$ROOT/target/gpu-bundle}"
MAX_MIB="${CXR_BUNDLE_MAX_MIB:-48}"
log() { printf '[bundle] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
START=$(date +%s)

for tool in cargo git tar xz strip python3; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH (needed to build the bundle)"
done

# shellcheck source=scripts/ci/cuda-env.sh
source "$ROOT/scripts/ci/cuda-env.sh"
cxr_cuda_env bundle || die "could not set up nvcc 13.0 (see the messages above)"

# 2. The working tree, copied with its mtimes (tar keeps them) so rebuilds stay incremental.
SRC="$BUILD/src"
rm -rf "$SRC"
mkdir -p "$SRC"
case "${CXR_BUNDLE_FROM:-worktree}" in
  worktree)
    log "copying the working tree to $SRC"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
      | xargs -0 -I{} sh -c 'test -e "$1" && printf "%s\0" "$1"' _ {} \
      | tar --null -T - -cf -) | (cd "$SRC" && tar -xf -) ;;
  HEAD|head)
    log "exporting HEAD ($(cd "$ROOT" && git rev-parse --short HEAD)) to $SRC"
    (cd "$ROOT" && git archive --format=tar HEAD) | (cd "$SRC" && tar -xf -) ;;
  *) die "CXR_BUNDLE_FROM='${CXR_BUNDLE_FROM}': expected 'worktree' (default) or 'HEAD'" ;;
esac

# 3. cudarc with an inert `dynamic-linking` (run-time loading instead).
CUDARC_MANIFEST="$(cd "$SRC" && cargo metadata --format-version 1 --locked --all-features 2>/dev/null \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="cudarc"))')" \
  || die "cargo metadata could not locate cudarc's source (run 'cargo fetch' once with network)"
CUDARC_SRC="$(dirname "$CUDARC_MANIFEST")"
CUDARC_VER="$(basename "$CUDARC_SRC")"
PATCHED="$BUILD/$CUDARC_VER"
if [[ ! -f "$PATCHED/.cxr-patched" ]]; then
  log "patching $CUDARC_VER: dynamic-linking -> run-time loading"
  rm -rf "$PATCHED"
  cp -a "$CUDARC_SRC" "$PATCHED"
  chmod -R u+w "$PATCHED"
  sed -i 's/feature = "dynamic-linking"/feature = "cxr-bundle-inert-dynamic-linking"/g' "$PATCHED/build.rs"
  grep -q 'cxr-bundle-inert-dynamic-linking' "$PATCHED/build.rs" \
    || die "$CUDARC_VER/build.rs no longer tests feature \"dynamic-linking\": revisit the patch"
  touch "$PATCHED/.cxr-patched"
fi

# candle-kernels links its MoE kernels against the CUDA runtime (`-lcudart`, a shared library
# the binary would then need at start-up). A linker script named libcudart.so, first on the
# linker's LIBRARY_PATH, links the wheel's static runtime instead (it dlopens the driver when
# used, and only those kernels, which we never call, use it).
CUDART_STATIC="$(find "$CUDA_ROOT" -name libcudart_static.a | head -n 1)"
[[ -n "$CUDART_STATIC" ]] || die "libcudart_static.a not found under $CUDA_ROOT (nvidia-cuda-runtime wheel)"
mkdir -p "$BUILD/link"
printf 'INPUT(%s)\n' "$CUDART_STATIC" >"$BUILD/link/libcudart.so"
export LIBRARY_PATH="$BUILD/link${LIBRARY_PATH:+:$LIBRARY_PATH}"

# 4. The release build of xtask with CUDA.
export CARGO_TARGET_DIR="$BUILD/target"
log "cargo build --release -p xtask --features cuda (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, target $CARGO_TARGET_DIR)"
(cd "$SRC" && cargo build --release -p xtask --features cuda \
  --config "patch.crates-io.cudarc.path='$PATCHED'")
BIN="$CARGO_TARGET_DIR/release/xtask"
[[ -x "$BIN" ]] || die "cargo did not produce $BIN"

# The binary must not need any CUDA library to start (they are dlopen'ed by cudarc).
NEEDED="$(readelf -d "$BIN" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
log "NEEDED: $NEEDED"
if grep -Eq 'libcuda|libcublas|libcurand|libnvrtc|libcudart' <<<"$NEEDED"; then
  die "the binary links CUDA libraries ($NEEDED): the cudarc patch did not take effect"
fi

# 5. Lay out the bundle.
log "laying out $BUNDLE"
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"
strip -o "$BUNDLE/xtask" "$BIN"
STRIPPED=$(stat -c %s "$BUNDLE/xtask")
xz -9 -T2 "$BUNDLE/xtask"
cp "$ROOT/scripts/gpu/check.sh" "$ROOT/scripts/gpu/reference.py" "$BUNDLE/"
chmod +x "$BUNDLE/check.sh"
{
  if [[ "${CXR_BUNDLE_FROM:-worktree}" == worktree ]]; then
    echo "source: working tree at $(cd "$ROOT" && git rev-parse HEAD)$(cd "$ROOT" && git diff --quiet HEAD || echo ' (+ uncommitted changes)')"
  else
    echo "source: commit $(cd "$ROOT" && git rev-parse HEAD)"
  fi
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
  echo "cuda_compute_cap: $CUDA_COMPUTE_CAP"
  echo "nvcc: $("$NVCC" --version | tail -n 1)"
  echo "cuda_libraries: loaded at run time (cudarc dynamic-loading; $CUDARC_VER patched)"
  echo "needed: $NEEDED"
  echo "stripped_bytes: $STRIPPED"
  (cd "$BUNDLE" && sha256sum xtask.xz check.sh reference.py)
} >"$BUNDLE/MANIFEST"

BYTES=$(du -sb "$BUNDLE" | cut -f1)
MIB=$(python3 -c "print(f'{$BYTES/1048576:.1f}')")
log "bundle: $BUNDLE, $MIB MiB (stripped binary $((STRIPPED / 1048576)) MiB before xz), built in $(( $(date +%s) - START )) s"
if (( BYTES > MAX_MIB * 1048576 )); then
  die "the bundle is $MIB MiB, over the $MAX_MIB MiB limit"
fi
echo "$BUNDLE"
