#!/usr/bin/env bash
# gpu_check.sh: the one command for a GPU machine's 7-minute slot: builds only the CUDA suite
# and the GPU bench (build/gpu_check, in parallel), runs the CUDA suite (every CUDA primitive
# against the CPU, the fused kernels against their composed twins, the model fixtures, tiny
# training runs with and without CUDA graphs, the fault paths), the bench on three
# configurations (ours; PyTorch's too where torch is installed), then compute-sanitizer memcheck
# on the suite's small cases with one cudaMalloc per block (FPA_CUDA_CACHE=0,
# FPA_CUDA_ADDRESS_RANGE=0: an access past a block's end is then past an allocation's), in
# whatever time is left. Every part has its own time limit and the whole run stops by
# TIME_BUDGET (400 s); the "budget" line of the summary lists them.
#
# The call to make from a session (the device tool's `run`), with the build libraries carried:
#   run(command="bash tools/gpu_check.sh", carry=[".gpu_deps"], timeout_s=450)
# .gpu_deps: on a machine with apt, `bash tools/gpu_check.sh --fetch-debs` downloads the .deb
# files of the build libraries (GoogleTest, libpng, libjpeg, zlib, {fmt}; about 2.5 MB, no
# data: the CUDA suite and the bench make their own) and lists them in .git/info/exclude; here
# they are unpacked into .gpu_deps/root. cuDNN and cuBLAS come from CUDA_HOME, the system, or
# Python's nvidia-cudnn / nvidia-cublas packages.
#
# $OUT (./gpu_results without it) receives three files, each written as soon as its part ends:
# summary.txt (environment, each part's result and time, failures with their messages),
# bench_table.txt (the bench's table), log_tail.txt (the last 400 lines of the whole log, which
# stays in build/gpu_check/gpu_check.log). Exits 1 when a test, the bench or memcheck failed,
# 2 when it could not build.
#
# GPU_CHECK_DRY=1: a dry run on a machine without a GPU: the same build (timed, with an
# estimate of its time on 16 cores), the parts that need a device skipped, the three files
# written. Environment: OUT, JOBS (all cores), CUDA_HOME (/usr/local/cuda), TIME_BUDGET (400),
# BENCH_CONFIGS (rgb64-T64-b20,rgb64-T64-b20-eager,grey32-T32-b32), SANITIZER=0 (skip it).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
DEPS=$REPO/.gpu_deps

if [ "${1:-}" = --fetch-debs ]; then
  mkdir -p "$DEPS"
  (cd "$DEPS" && apt-get download libgtest-dev libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo \
    zlib1g-dev libfmt-dev libfmt9) || exit 1
  grep -qx '/.gpu_deps/' .git/info/exclude 2>/dev/null || echo /.gpu_deps/ >>.git/info/exclude
  du -sh "$DEPS"
  echo 'now: run(command="bash tools/gpu_check.sh", carry=[".gpu_deps"], timeout_s=450)'
  exit 0
fi

DRY=${GPU_CHECK_DRY:-0}
RESULTS=${OUT:-$REPO/gpu_results}
WORK=$REPO/build/gpu_check  # the build, the whole log, scratch output
mkdir -p "$RESULTS" "$WORK"
LOG=$WORK/gpu_check.log
SUMMARY=$RESULTS/summary.txt
TABLE=$RESULTS/bench_table.txt
TAIL=$RESULTS/log_tail.txt
: >"$LOG"
: >"$SUMMARY"
JOBS=${JOBS:-$(nproc)}
TIME_BUDGET=${TIME_BUDGET:-400}
BENCH_CONFIGS=${BENCH_CONFIGS:-rgb64-T64-b20,rgb64-T64-b20-eager,grey32-T32-b32}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
START=$SECONDS
FAILED=0
# Each part's limit in seconds; together within TIME_BUDGET, the sanitizer taking what is left.
BUILD_LIMIT=170 SUITE_LIMIT=120 BENCH_LIMIT=70

say() { echo "$*" | tee -a "$LOG" >>"$SUMMARY"; echo "$*"; }
elapsed() { echo $((SECONDS - START)); }
step() { say "==== $* (at $(elapsed) s)"; }
flush_tail() { tail -n 400 "$LOG" >"$TAIL.tmp" && mv "$TAIL.tmp" "$TAIL"; }
# limit_for CAP: CAP, or less when the budget has less left.
limit_for() {
  local left=$((TIME_BUDGET - $(elapsed)))
  [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
# run_logged SECONDS CMD...: CMD with a time limit, its output into the log and $WORK/last.out.
run_logged() {
  local limit=$1
  shift
  timeout --signal=KILL "$limit" "$@" >"$WORK/last.out" 2>&1
  local rc=$?
  cat "$WORK/last.out" >>"$LOG"
  return $rc
}
prepend() { eval "export $1=\"$2\${$1:+:\$$1}\""; }
trap 'flush_tail' EXIT

step "environment$([ "$DRY" = 1 ] && echo ' (GPU_CHECK_DRY=1: nothing runs on a device)')"
{
  uname -srm
  echo "cores: $(nproc), jobs: $JOBS, commit: $(git rev-parse --short HEAD 2>/dev/null)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$CUDA_HOME/bin/nvcc" --version 2>&1 | tail -2
  g++ --version | head -1
} 2>&1 | tee -a "$LOG" >>"$SUMMARY"
say "budget: build <= $BUILD_LIMIT s, CUDA suite <= $SUITE_LIMIT s, bench <= $BENCH_LIMIT s, memcheck what is left;" \
  "all within $TIME_BUDGET s"

# ---- carried packages (see --fetch-debs)
if ls "$DEPS"/*.deb >/dev/null 2>&1; then
  mkdir -p "$DEPS/root"
  for deb in "$DEPS"/*.deb; do dpkg -x "$deb" "$DEPS/root"; done
  prepend CPATH "$DEPS/root/usr/include:$DEPS/root/usr/include/x86_64-linux-gnu"
  prepend LIBRARY_PATH "$DEPS/root/usr/lib/x86_64-linux-gnu"
  prepend LD_LIBRARY_PATH "$DEPS/root/usr/lib/x86_64-linux-gnu"
  say "carried packages: $(ls "$DEPS"/*.deb | wc -l) unpacked from .gpu_deps ($(du -sh "$DEPS" | cut -f1) with root/)"
fi

# ---- cuDNN and cuBLAS: CUDA_HOME, the system, or Python's nvidia-* packages
LINKS=$WORK/links  # unversioned names for libraries that only come versioned
mkdir -p "$LINKS"
python_package_dir() {
  python3 -c "import importlib; m = importlib.import_module('$1'); print(list(m.__path__)[0])" 2>/dev/null
}
has_header() { echo "#include <$1>" | g++ -E -x c++ -I"$CUDA_HOME/include" - >/dev/null 2>&1; }
if ! has_header cudnn.h; then
  dir=$(python_package_dir nvidia.cudnn)
  if [ -n "$dir" ] && [ -f "$dir/include/cudnn.h" ]; then
    say "cuDNN: from Python's nvidia-cudnn at $dir"
    export CUDNN_HOME=$dir
    if [ ! -e "$dir/lib/libcudnn.so" ]; then  # only libcudnn.so.9: link it by its full name
      export CUDNN_LIB="-l:$(find "$dir/lib" -maxdepth 1 -name 'libcudnn.so.*' -printf '%f\n' | sort | head -1)"
    fi
    prepend LD_LIBRARY_PATH "$dir/lib"
  else
    say "cuDNN: not found (no cudnn.h in $CUDA_HOME/include or the system, no nvidia-cudnn for python3)"
  fi
fi
if [ ! -e "$CUDA_HOME/lib64/libcublas.so" ] && ! ldconfig -p | grep -q 'libcublas.so '; then
  dir=$(python_package_dir nvidia.cublas)
  if [ -n "$dir" ]; then
    say "cuBLAS: from Python's nvidia-cublas at $dir"
    ln -sf "$(find "$dir/lib" -maxdepth 1 -name 'libcublas.so.*' | sort | head -1)" "$LINKS/libcublas.so"
    prepend LIBRARY_PATH "$LINKS"
    prepend LD_LIBRARY_PATH "$dir/lib"
    has_header cublas_v2.h || prepend CPATH "$dir/include"
  else
    say "cuBLAS: not found in $CUDA_HOME/lib64 or Python's nvidia-cublas"
  fi
fi
missing=()
for h in gtest/gtest.h png.h jpeglib.h zlib.h fmt/format.h; do has_header "$h" || missing+=("$h"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "MISSING headers: ${missing[*]}: run bash tools/gpu_check.sh --fetch-debs where apt works, carry .gpu_deps"
  exit 2
fi

# ---- build: the CUDA suite and the bench only. Each compiler call is timed (the longest one
# bounds the build on any number of cores), so a dry run can tell the time on 16.
step "build (make -j$JOBS: fpa_tests_cuda, bench_gpu)"
TIMES=$WORK/compile_times
: >"$TIMES"
cat >"$WORK/timed" <<EOF
#!/usr/bin/env bash
# Runs a compiler, appending its wall seconds to $TIMES.
start=\$(date +%s.%N); "\$@"; rc=\$?
awk -v s="\$start" -v e="\$(date +%s.%N)" 'BEGIN { print e - s }' >>"$TIMES"; exit \$rc
EOF
chmod +x "$WORK/timed"
NVCC_BIN=$(command -v nvcc || echo "$CUDA_HOME/bin/nvcc")
[ "$DRY" = 1 ] && rm -rf "$WORK/build"  # timed from scratch, as on a fresh GPU machine
build_start=$SECONDS
TIMEFORMAT='%U %S'
# A dry run's build is not limited: it runs on fewer cores, and is timed to tell the real one's time.
{ time run_logged "$([ "$DRY" = 1 ] && echo 3600 || limit_for $BUILD_LIMIT)" make -j"$JOBS" BUILD="$WORK/build" CXX="$WORK/timed g++" \
  NVCC="$WORK/timed $NVCC_BIN" "$WORK/build/fpa_tests_cuda" "$WORK/build/bench_gpu"; } 2>"$WORK/build_cpu"
build_rc=$?
build_wall=$((SECONDS - build_start))
if [ $build_rc -ne 0 ]; then
  say "BUILD FAILED (exit $build_rc$([ $build_rc = 137 ] && echo ", killed after the limit") after $build_wall s); the errors:"
  grep -E "error|Error" "$WORK/last.out" | head -40 | tee -a "$SUMMARY"
  exit 2
fi
cpu_seconds=$(awk '{printf "%d", $1 + $2}' "$WORK/build_cpu")
longest=$(sort -g "$TIMES" | tail -1 | awk '{printf "%d", $1}')
estimate=$(awk -v c="$cpu_seconds" -v l="$longest" 'BEGIN { e = c / 16; if (l > e) e = l; printf "%d", e + 10 }')
say "built in $build_wall s on $JOBS jobs: $(wc -l <"$TIMES") compiler calls, $cpu_seconds CPU-s, the longest $longest s;" \
  "on 16 cores about $estimate s (max(CPU-s / 16, longest) + 10 s of linking), limit $BUILD_LIMIT s"
flush_tail

TESTS=$WORK/build/fpa_tests_cuda
# ---- the CUDA suite
if [ "$DRY" = 1 ]; then
  say "==== CUDA suite: skipped (dry run; $($TESTS --gtest_list_tests | grep -c '^  ') tests listed), limit $SUITE_LIMIT s"
else
  limit=$(limit_for $SUITE_LIMIT)
  step "CUDA suite (at most $limit s)"
  suite_start=$SECONDS
  run_logged "$limit" "$TESTS"
  rc=$?
  grep -E "^\[ CUDA     \]|^\[  FAILED  \] [A-Za-z0-9_/.]+$|^\[  (PASSED|FAILED|SKIPPED) *\] [0-9]+ tests?|tests? from .* ran" \
    "$WORK/last.out" >>"$SUMMARY"
  say "CUDA suite: exit $rc$([ $rc = 137 ] && echo " (killed after $limit s)") in $((SECONDS - suite_start)) s"
  if [ $rc -ne 0 ]; then
    FAILED=1
    grep -E "Failure$|Actual: |threw: |what\(\): |cuda_test_util.cpp:[0-9]+: " "$WORK/last.out" | head -200 >>"$SUMMARY"
  fi
fi
flush_tail

# ---- the bench: ours, PyTorch's where torch is installed, then the table
if [ "$DRY" = 1 ]; then
  say "==== bench: skipped (dry run), limit $BENCH_LIMIT s for $BENCH_CONFIGS" | tee "$TABLE" >/dev/null
else
  limit=$(limit_for $BENCH_LIMIT)
  step "bench $BENCH_CONFIGS (at most $limit s)"
  bench_start=$SECONDS
  run_logged "$limit" "$WORK/build/bench_gpu" --device cuda --configs "$BENCH_CONFIGS" --json "$WORK/ours.json"
  rc=$?
  [ $rc -ne 0 ] && { FAILED=1; say "bench: exit $rc$([ $rc = 137 ] && echo " (killed after $limit s)")"; }
  rm -f "$WORK/pytorch.json"
  left=$((limit - (SECONDS - bench_start)))
  if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null && [ "$left" -gt 10 ]; then
    run_logged "$left" python3 tools/reference/bench_reference.py --device cuda --configs "$BENCH_CONFIGS" \
      --json "$WORK/pytorch.json" || say "PyTorch reference: exit $? (its figures read n/a)"
  else
    say "PyTorch reference: not run (no torch with CUDA here, or no time left: $left s)"
  fi
  python3 tools/compare_bench.py "$WORK/ours.json" "$WORK/pytorch.json" >"$TABLE" 2>&1
  cat "$TABLE" >>"$LOG"
  say "bench: done in $((SECONDS - bench_start)) s (table in bench_table.txt)"
fi
flush_tail

# ---- compute-sanitizer memcheck, one cudaMalloc per block, the suite's small cases (the
# allocator's own tests and the graph runs expect the cache, and a capture cannot succeed
# without it: left out)
SAN=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
SAN_FILTER='-CudaOps.*:CudaMemory.*:CudaFixtures.*:CudaTrain.*:CudaFaults.*'
if [ "${SANITIZER:-1}" = 0 ]; then
  say "==== memcheck: skipped (SANITIZER=0)"
elif [ "$DRY" = 1 ]; then
  say "==== memcheck: skipped (dry run), it gets what is left of $TIME_BUDGET s$([ -x "$SAN" ] || echo '; compute-sanitizer is not installed here')"
elif [ ! -x "$SAN" ]; then
  say "==== memcheck: compute-sanitizer is not installed"
elif [ $((TIME_BUDGET - $(elapsed))) -lt 30 ]; then
  say "==== memcheck: skipped, $(elapsed) s already spent"
else
  limit=$(limit_for "$TIME_BUDGET")
  step "memcheck, small cases, FPA_CUDA_CACHE=0 FPA_CUDA_ADDRESS_RANGE=0 (at most $limit s)"
  FPA_CUDA_TEST_SMALL=1 FPA_CUDA_CACHE=0 FPA_CUDA_ADDRESS_RANGE=0 run_logged "$limit" \
    "$SAN" --tool memcheck --error-exitcode 99 --print-limit 20 "$TESTS" --gtest_filter="$SAN_FILTER"
  rc=$?
  if grep -qiE "^========= .*(device|GPU).* not supported|not supported on this (device|GPU)" "$WORK/last.out"; then
    say "memcheck: not available for this GPU or driver (not a failure): $(grep -m1 -i 'not supported' "$WORK/last.out")"
  else
    case $rc in
      0) say "memcheck: clean" ;;
      99) FAILED=1; say "memcheck: ERRORS"; grep -E "^========= (Invalid|Program hit|  at |    by )" "$WORK/last.out" | head -40 >>"$SUMMARY" ;;
      137) say "memcheck: out of time after $limit s (not a failure); $(grep -c '^\[       OK \]' "$WORK/last.out") tests clean" ;;
      *) FAILED=1; say "memcheck: exit $rc (tests failed under the sanitizer, or it could not run)"
         grep -E "Failure$|threw: |^=========" "$WORK/last.out" | head -40 >>"$SUMMARY" ;;
    esac
  fi
fi

step "done, $([ $FAILED = 0 ] && echo 'ALL PASSED' || echo FAILURES)$([ "$DRY" = 1 ] && echo ' (dry run)'), results in $RESULTS"
exit $FAILED
