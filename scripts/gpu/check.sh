#!/usr/bin/env bash
# The GPU check (docs/gpu.md): prove and time every CUDA path of cxr-cml in one call and always
# leave a complete report, OUT/gpu-report.json and OUT/gpu-report.md.
#
#   bash target/gpu-bundle/check.sh --out DIR             # on the GPU host (8 minutes at most)
#   bash scripts/gpu/check.sh --dry-run --out DIR         # anywhere: CPU, tiny shapes, < 3 min
#
# 1. the xtask binary: the bundle's xtask.xz unpacked into a temporary folder; from a checkout
#    (no xtask.xz beside this script) --xtask PATH, else target/release/xtask, else
#    target/debug/xtask (build one with `cargo build --release -p xtask`);
# 2. the environment: GPU, driver, and the CUDA libraries cudarc loads at run time, found on
#    the system (libcuda) and under the Python install's nvidia/*/lib (cuBLAS, cuRAND, NVRTC,
#    ...), which go on LD_LIBRARY_PATH; written to OUT/environment.json;
# 3. `xtask gpu-check` (each step in its own process, time-boxed; the report is rewritten
#    after every step);
# 4. scripts/gpu/reference.py: PyTorch eager and scikit-learn on the same machine
#    (OUT/reference.json; steps whose packages are missing are `skipped`);
# 5. `xtask gpu-check --merge`: the references and ratios go into the report.
# A failure of any part is recorded and the next part runs; if the binary cannot start at all,
# a report saying so is written from here.
#
# Options: --out DIR (required), --dry-run, --budget-s S (default 480; dry run 170),
# --xtask PATH, --python PY (default $CXR_PYTHON, else python3), --device cuda|cuda:N|cpu.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="" DRY=0 BUDGET="" XTASK="" PY="${CXR_PYTHON:-python3}" DEVICE="cuda"
usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="${2:-}"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --budget-s) BUDGET="${2:-}"; shift 2 ;;
    --xtask) XTASK="${2:-}"; shift 2 ;;
    --python) PY="${2:-}"; shift 2 ;;
    --device) DEVICE="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$OUT" ]]; then
  echo "check.sh: --out DIR is required (the report folder)" >&2; exit 2
fi
if [[ -z "$BUDGET" ]]; then BUDGET=$(( DRY ? 170 : 480 )); fi
if ! [[ "$BUDGET" =~ ^[0-9]+$ ]]; then
  echo "check.sh: --budget-s '$BUDGET' is not a whole number of seconds" >&2; exit 2
fi
mkdir -p "$OUT" || { echo "check.sh: cannot create --out $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
START=$(date +%s)
LOG="$OUT/check.log"
: >"$LOG"
log() { printf '[check] %s\n' "$*" | tee -a "$LOG" >&2; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
have() { command -v "$1" >/dev/null 2>&1; }
TMP="$(mktemp -d "${TMPDIR:-/tmp}/cxr-gpu-check.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
log "out $OUT, budget ${BUDGET} s, $([[ $DRY == 1 ]] && echo dry-run || echo "device $DEVICE")"

# 1. The binary.
STARTUP_ERROR=""
if [[ -z "$XTASK" && -f "$HERE/xtask.xz" ]]; then
  # xz, or Python's lzma where xz is not installed.
  if { have xz && xz -dc "$HERE/xtask.xz" >"$TMP/xtask" 2>>"$LOG"; } \
    || "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$HERE/xtask.xz" "$TMP/xtask" 2>>"$LOG"; then
    chmod +x "$TMP/xtask"; XTASK="$TMP/xtask"
    log "unpacked $HERE/xtask.xz"
  else
    STARTUP_ERROR="could not unpack $HERE/xtask.xz (neither xz nor $PY's lzma worked; see check.log)"
  fi
fi
if [[ -z "$XTASK" && -z "$STARTUP_ERROR" ]]; then
  ROOT="$(cd "$HERE/../.." && pwd)"
  for cand in "$ROOT/target/release/xtask" "$ROOT/target/debug/xtask"; do
    if [[ -x "$cand" ]]; then XTASK="$cand"; break; fi
  done
  [[ -n "$XTASK" ]] || STARTUP_ERROR="no xtask binary: no xtask.xz beside check.sh and none under $ROOT/target/{release,debug} (build one: cargo build --release -p xtask, or pass --xtask PATH)"
fi

# 2. The environment: libraries on LD_LIBRARY_PATH, and what was found.
NV_ROOT=""
if have "$PY"; then
  NV_ROOT="$("$PY" -c 'import nvidia, os; print(os.path.dirname(nvidia.__file__) if getattr(nvidia, "__file__", None) else list(nvidia.__path__)[0])' 2>/dev/null || true)"
fi
LIBDIRS=""
if [[ -n "$NV_ROOT" ]]; then
  for d in "$NV_ROOT"/*/lib "$NV_ROOT"/*/*/lib; do
    [[ -d "$d" ]] && LIBDIRS="${LIBDIRS:+$LIBDIRS:}$d"
  done
fi
if [[ -n "$LIBDIRS" ]]; then
  export LD_LIBRARY_PATH="$LIBDIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
find_lib() {  # the first file named $1* on the loader's search path, or nothing
  local name="$1" d
  local IFS=:
  for d in ${LD_LIBRARY_PATH:-} /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/local/cuda/lib64 /usr/lib/wsl/lib; do
    [[ -n "$d" ]] || continue
    compgen -G "$d/$name*" >/dev/null && { compgen -G "$d/$name*" | head -n 1; return; }
  done
  if have ldconfig; then ldconfig -p 2>/dev/null | awk -v n="$name" '$1 ~ "^"n {print $NF; exit}'; fi
}
{
  echo "{"
  printf '  "host_cpus": %s,\n' "$(nproc 2>/dev/null || echo null)"
  printf '  "python": "%s",\n' "$("$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo missing)"
  printf '  "python_nvidia_root": "%s",\n' "${NV_ROOT:-missing}"
  printf '  "ld_library_path_added": "%s",\n' "$LIBDIRS"
  if have nvidia-smi; then
    printf '  "gpu": "%s",\n' "$(nvidia-smi --query-gpu=name,compute_cap,memory.total --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '"')"
    printf '  "driver": "%s",\n' "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
    printf '  "cuda_driver_api": "%s",\n' "$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n 1)"
  else
    printf '  "gpu": "missing (no nvidia-smi)",\n'
  fi
  printf '  "libraries": {\n'
  first=1
  for lib in libcuda.so libcublas.so libcublasLt.so libcurand.so libnvrtc.so libcudart.so; do
    p="$(find_lib "$lib")"
    [[ $first == 1 ]] || printf ',\n'
    first=0
    printf '    "%s": "%s"' "$lib" "${p:-missing}"
  done
  printf '\n  }\n}\n'
} >"$OUT/environment.json"
log "environment: $(tr -d '\n' <"$OUT/environment.json" | tr -s ' ')"

# 3. The checks. The reference keeps at least a third of what is left.
RUN_ARGS=(--out "$OUT" --environment "$OUT/environment.json")
if [[ $DRY == 1 ]]; then RUN_ARGS+=(--dry-run); else RUN_ARGS+=(--device "$DEVICE"); fi
if [[ -z "$STARTUP_ERROR" ]]; then
  if ! "$XTASK" --version >>"$LOG" 2>&1; then
    STARTUP_ERROR="the xtask binary ($XTASK) does not start: $(tail -n 3 "$LOG" | tr '\n' ' ')"
  fi
fi
if [[ -z "$STARTUP_ERROR" ]]; then
  XT_BUDGET=$(( ($(left) - 20) * 2 / 3 ))
  (( XT_BUDGET > 10 )) || XT_BUDGET=10
  STEP_LIMIT=$(( DRY ? 60 : 90 ))
  log "xtask gpu-check (budget ${XT_BUDGET} s, ${STEP_LIMIT} s a step)"
  timeout -k 5 $(( XT_BUDGET + 30 )) "$XTASK" gpu-check "${RUN_ARGS[@]}" \
    --budget-s "$XT_BUDGET" --step-timeout-s "$STEP_LIMIT" 2>&1 | tee -a "$LOG" >&2
  rc=${PIPESTATUS[0]}
  (( rc == 0 )) || log "xtask gpu-check exited with $rc (the report holds what it finished)"
fi

# 4. The references.
REF="$OUT/reference.json"
if have "$PY" && [[ -f "$HERE/reference.py" ]]; then
  R_BUDGET=$(( $(left) - 15 ))
  if (( R_BUDGET > 10 )); then
    log "reference.py (budget ${R_BUDGET} s)"
    R_ARGS=(--out "$REF" --budget-s "$R_BUDGET")
    [[ $DRY == 1 ]] && R_ARGS+=(--dry-run)
    [[ $DRY == 1 || "$DEVICE" == cpu ]] || R_ARGS+=(--device "$DEVICE")
    timeout -k 5 $(( R_BUDGET + 5 )) "$PY" "$HERE/reference.py" "${R_ARGS[@]}" 2>&1 | tee -a "$LOG" >&2
    (( PIPESTATUS[0] == 0 )) || log "reference.py exited with ${PIPESTATUS[0]} (its file holds what it finished)"
  else
    printf '{"schema": "cxr-cml-gpu-reference/1", "status": "skipped", "error": "no time left in the budget", "steps": {}}\n' >"$REF"
  fi
else
  printf '{"schema": "cxr-cml-gpu-reference/1", "status": "skipped", "error": "no python (%s) or no reference.py beside check.sh", "steps": {}}\n' "$PY" >"$REF"
fi

# 5. Merge, or the report of a binary that could not start.
if [[ -z "$STARTUP_ERROR" && -f "$OUT/gpu-report.json" ]]; then
  "$XTASK" gpu-check --merge "${RUN_ARGS[@]}" --reference "$REF" 2>&1 | tee -a "$LOG" >&2 \
    || log "merging the reference failed"
else
  [[ -n "$STARTUP_ERROR" ]] || STARTUP_ERROR="xtask gpu-check wrote no report (see check.log)"
  log "error: $STARTUP_ERROR"
  esc() { sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1" | tr '\n' ' '; }
  {
    printf '{\n  "schema": "cxr-cml-gpu-report/1",\n  "mode": "%s",\n' "$([[ $DRY == 1 ]] && echo dry-run || echo device)"
    printf '  "finished": false,\n  "error": "%s",\n' "$(esc "$STARTUP_ERROR")"
    printf '  "environment": %s,\n' "$(cat "$OUT/environment.json")"
    printf '  "reference": %s,\n  "steps": [],\n  "ratios": []\n}\n' "$(cat "$REF" 2>/dev/null || echo null)"
  } >"$OUT/gpu-report.json"
  printf '# GPU check: no result\n\n%s\n\nSee check.log and environment.json.\n' "$STARTUP_ERROR" >"$OUT/gpu-report.md"
fi
log "done in $(( $(date +%s) - START )) s: $OUT/gpu-report.md"
