#!/usr/bin/env bash
# gpu_check.sh: the one command for a machine with an NVIDIA GPU: builds everything with 16
# jobs, runs the CUDA suite (make test-cuda: every CUDA primitive against the CPU, the fused
# kernels against their composed twins, the model fixtures, tiny training runs with and
# without CUDA graphs) and the CPU suite (build/fpa_tests, in parallel shards), then `make
# bench-gpu` (ours against PyTorch: ms/step, sampling images/s, peak memory, the issue's
# targets), then the CUDA suite's small cases under compute-sanitizer when time allows, and
# writes everything to $OUT (or ./gpu_results): gpu_check.log (all output), summary.txt (what
# passed, what failed, where, the bench table), cuda_tests.xml and bench/ (ours.json,
# pytorch.json, table.txt). Exits non-zero when anything
# failed (a missed bench target is not a failure; a bench that cannot run is). About 5 minutes
# on an H200 machine with 16 cores, plus at most BENCH_LIMIT for the bench.
#
# When the CUDA suite fails, each of its test suites is run again on its own, so a crash or a
# sticky CUDA error in one does not hide the results of the others.
#
# Machines without the Debian build packages (GoogleTest, libpng, libjpeg, zlib) or the data
# (Fashion-MNIST, gemojione): on a machine with apt, `tools/gpu_check.sh --fetch-debs` puts
# their .deb files in .gpu_deps/ (about 45 MB); carried along, they are unpacked here, the
# libraries into .gpu_deps/root, the data into /. cuDNN and cuBLAS are taken from CUDA_HOME,
# the system, or Python's nvidia-cudnn / nvidia-cublas packages, whichever has them.
#
# Environment: OUT (results folder), JOBS (16), CUDA_HOME (/usr/local/cuda),
# SANITIZER=0 (skip compute-sanitizer), TIME_BUDGET (seconds, 290: later steps are skipped past it;
# the bench's time is not counted), BENCH=0 (skip the bench), BENCH_LIMIT (seconds, 240);
# FPA_CUDA_ADDRESS_RANGE=0 (large blocks from cudaMalloc instead of the allocator's growing
# address range: to tell whether a memory fault comes from it; never run on a GPU before).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
DEPS=${FPA_GPU_DEPS:-$REPO/.gpu_deps}

if [ "${1:-}" = --fetch-debs ]; then
  mkdir -p "$DEPS"
  (cd "$DEPS" && apt-get download libgtest-dev libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo \
    zlib1g-dev libfmt-dev libfmt9 dataset-fashion-mnist ruby-gemojione) || exit 1
  ls -la "$DEPS"
  echo "Now keep git from listing them: echo /.gpu_deps/ >> .git/info/exclude; and carry .gpu_deps"
  exit 0
fi

RESULTS=${OUT:-$REPO/gpu_results}
mkdir -p "$RESULTS"
LOG=$RESULTS/gpu_check.log
SUMMARY=$RESULTS/summary.txt
: >"$LOG"
: >"$SUMMARY"
JOBS=${JOBS:-16}
TIME_BUDGET=${TIME_BUDGET:-290}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
START=$SECONDS
FAILED=0

say() { echo "$*" | tee -a "$LOG" "$SUMMARY"; }
step() { say "==== $* (at $((SECONDS - START)) s)"; }
# run_logged SECONDS CMD...: runs CMD with a time limit, its output into the log (and on screen).
run_logged() {
  local limit=$1
  shift
  timeout --signal=KILL "$limit" "$@" 2>&1 | tee -a "$LOG"
  return "${PIPESTATUS[0]}"
}
prepend() { eval "export $1=\"$2\${$1:+:\$$1}\""; }

# ---- environment
step "environment"
{
  uname -srm
  echo "cores: $(nproc)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$CUDA_HOME/bin/nvcc" --version 2>&1 | tail -2
  g++ --version | head -1
} 2>&1 | tee -a "$LOG" "$SUMMARY"

# ---- carried packages (see --fetch-debs)
if ls "$DEPS"/*.deb >/dev/null 2>&1; then
  step "unpacking carried packages from $DEPS"
  mkdir -p "$DEPS/root"
  for deb in "$DEPS"/*.deb; do
    case $(basename "$deb") in
      dataset-*|ruby-*) dpkg -x "$deb" / ;;  # data, at the paths the tests read
      *) dpkg -x "$deb" "$DEPS/root" ;;      # build libraries, private
    esac
  done
  prepend CPATH "$DEPS/root/usr/include:$DEPS/root/usr/include/x86_64-linux-gnu"
  prepend LIBRARY_PATH "$DEPS/root/usr/lib/x86_64-linux-gnu"
  prepend LD_LIBRARY_PATH "$DEPS/root/usr/lib/x86_64-linux-gnu"
fi

# ---- cuDNN and cuBLAS: CUDA_HOME, the system, or Python's nvidia-* packages
LINKS=$REPO/build/gpu_links  # unversioned names for libraries that only come versioned
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
      versioned=$(find "$dir/lib" -maxdepth 1 -name 'libcudnn.so.*' -printf '%f\n' | sort | head -1)
      export CUDNN_LIB="-l:$versioned"
    fi
    prepend LD_LIBRARY_PATH "$dir/lib"
  else
    say "cuDNN: not found (no cudnn.h in $CUDA_HOME/include or the system, no nvidia-cudnn for python3)"
  fi
else
  say "cuDNN: $(echo '#include <cudnn.h>' | g++ -E -x c++ -I"$CUDA_HOME/include" - | grep -m1 -o '/[^"]*cudnn.h')"
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
for h in gtest/gtest.h png.h jpeglib.h zlib.h; do has_header "$h" || missing+=("$h"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "MISSING headers: ${missing[*]}: on a machine with apt run tools/gpu_check.sh --fetch-debs, carry .gpu_deps"
  exit 2
fi

# ---- build
step "build (make -j$JOBS)"
if ! run_logged 600 make -j"$JOBS" build/fpa build/fpa_tests build/fpa_tests_cuda >/dev/null; then
  say "BUILD FAILED; the errors:"
  grep -E "error|Error" "$LOG" | head -40 | tee -a "$SUMMARY"
  exit 1
fi
say "built in $((SECONDS - START)) s"

# ---- the CUDA suite
step "CUDA suite (make test-cuda)"
run_logged 300 make test-cuda GTEST_ARGS="--gtest_output=xml:$RESULTS/cuda_tests.xml" >"$RESULTS/.cuda_out"
cuda_rc=$?
grep -E "^\[ CUDA     \]|^\[  FAILED  \] [A-Za-z0-9_/.]+$|^\[  (PASSED|FAILED|SKIPPED) *\] [0-9]+ tests?|tests? from .* ran" \
  "$RESULTS/.cuda_out" | tee -a "$SUMMARY" >/dev/null
if [ $cuda_rc -ne 0 ]; then
  FAILED=1
  say "CUDA suite exit code $cuda_rc; its failures (case labels from the traces):"
  grep -E "Failure$|Actual: |threw: |cuda_test_util.cpp:[0-9]+: " "$RESULTS/.cuda_out" | head -300 >>"$SUMMARY"
  say "rerunning each CUDA test suite on its own:"
  for suite in $(build/fpa_tests_cuda --gtest_list_tests | grep -E '^[A-Za-z0-9_]+\.$' | tr -d '.'); do
    [ $((SECONDS - START)) -gt "$TIME_BUDGET" ] && { say "  (out of time budget, stopped)"; break; }
    run_logged 120 build/fpa_tests_cuda --gtest_filter="$suite.*" >"$RESULTS/.suite_out"
    rc=$?
    say "  $suite: exit $rc $(grep -cE '^\[  FAILED  \] [A-Za-z]+\.[A-Za-z]+ \(' "$RESULTS/.suite_out") failed"
    if [ $rc -ne 0 ]; then  # is the allocator's address range (CUDA virtual memory, new) the cause?
      FPA_CUDA_ADDRESS_RANGE=0 run_logged 120 build/fpa_tests_cuda --gtest_filter="$suite.*" >"$RESULTS/.suite_out"
      rc=$?
      say "  $suite with FPA_CUDA_ADDRESS_RANGE=0: exit $rc" \
        "$(grep -cE '^\[  FAILED  \] [A-Za-z]+\.[A-Za-z]+ \(' "$RESULTS/.suite_out") failed"
    fi
  done
fi
rm -f "$RESULTS/.cuda_out" "$RESULTS/.suite_out"

# ---- the CPU suite, in parallel shards (its long tests are single-threaded gradient checks);
# FPA_BIN unset: the CLI tests that would start a training skip.
SHARDS=$(($(nproc) / 2))
[ "$SHARDS" -lt 1 ] && SHARDS=1
[ "$SHARDS" -gt 8 ] && SHARDS=8
step "CPU suite (build/fpa_tests, $SHARDS shards of $(($(nproc) / SHARDS)) threads)"
EXCLUDE="Tensor.MisuseRaisesNamedErrors"  # expects no usable GPU; wrong on this machine
[ -d "${FPA_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}" ] ||
  { EXCLUDE="$EXCLUDE:FashionMnistData.*:DataLoader.*:DatasetCache.*:Train.*"; say "no Fashion-MNIST: its tests left out"; }
ls -d /usr/share/rubygems-integration/all/gems/gemojione-*/assets/png >/dev/null 2>&1 ||
  { EXCLUDE="$EXCLUDE:ImageFolder.Emoji*:DatasetCache.Emoji*"; say "no gemojione: its tests left out"; }
say "left out: $EXCLUDE"
pids=()
for ((i = 0; i < SHARDS; ++i)); do
  GTEST_TOTAL_SHARDS=$SHARDS GTEST_SHARD_INDEX=$i OMP_NUM_THREADS=$(($(nproc) / SHARDS)) \
    FPA_CACHE_DIR="$REPO/build/gpu_check_cache_$i" timeout --signal=KILL 300 \
    build/fpa_tests --gtest_filter="-$EXCLUDE" >"$RESULTS/.cpu_$i" 2>&1 &
  pids+=($!)
done
for ((i = 0; i < SHARDS; ++i)); do
  wait "${pids[$i]}"
  rc=$?
  cat "$RESULTS/.cpu_$i" >>"$LOG"
  grep -E "^\[  FAILED  \] [A-Za-z0-9_/.]+$|^\[  (PASSED|FAILED|SKIPPED) *\] [0-9]+ tests?|tests? from .* ran" "$RESULTS/.cpu_$i" |
    sed "s/^/shard $i: /" | tee -a "$SUMMARY" >/dev/null
  [ $rc -ne 0 ] && { FAILED=1; say "CPU suite shard $i: exit $rc$([ $rc = 137 ] && echo ' (killed after 300 s)')"; }
  rm -f "$RESULTS/.cpu_$i"
done

# ---- the benchmark (make bench-gpu): ours, then PyTorch eager, then the table. Its own time
# limit; its time is given back to TIME_BUDGET so the sanitizer's share stays as before.
BENCH_SPENT=0
if [ "${BENCH:-1}" = 0 ]; then
  say "==== bench: skipped (BENCH=0)"
else
  step "bench (make bench-gpu, at most ${BENCH_LIMIT:-240} s)"
  bench_start=$SECONDS
  run_logged "${BENCH_LIMIT:-240}" make -j"$JOBS" bench-gpu BENCH_OUT="$RESULTS/bench" >"$RESULTS/.bench_out"
  bench_rc=$?
  BENCH_SPENT=$((SECONDS - bench_start))
  grep -vE "^(g\+\+|/.*nvcc) " "$RESULTS/.bench_out" | grep -E "^(fpa bench_gpu|PyTorch reference)|failed" >>"$SUMMARY"
  [ -f "$RESULTS/bench/table.txt" ] ||  # killed: the table of what was measured
    python3 tools/compare_bench.py "$RESULTS/bench/ours.json" "$RESULTS/bench/pytorch.json" >"$RESULTS/bench/table.txt" 2>&1
  cat "$RESULTS/bench/table.txt" >>"$SUMMARY"
  case $bench_rc in
    0) say "bench: done in $BENCH_SPENT s" ;;
    137) FAILED=1; say "bench: killed after ${BENCH_LIMIT:-240} s (partial figures in $RESULTS/bench)" ;;
    *) FAILED=1; say "bench: exit $bench_rc (a configuration failed: see the errors above and gpu_check.log)" ;;
  esac
  rm -f "$RESULTS/.bench_out"
fi
TESTS_START=$((START + BENCH_SPENT))  # the sanitizer's budget below counts the build and tests only

# ---- compute-sanitizer on the CUDA suite's small cases
SAN=$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")
if [ "${SANITIZER:-1}" = 0 ]; then
  say "==== compute-sanitizer: skipped (SANITIZER=0)"
elif [ ! -x "$SAN" ]; then
  say "==== compute-sanitizer: not installed"
elif [ $((SECONDS - TESTS_START)) -gt $((TIME_BUDGET - 60)) ]; then
  say "==== compute-sanitizer: skipped, $((SECONDS - TESTS_START)) s already spent"
else
  left=$((TIME_BUDGET - (SECONDS - TESTS_START)))
  step "compute-sanitizer memcheck, small cases (at most $left s)"
  FPA_CUDA_TEST_SMALL=1 run_logged "$left" "$SAN" --tool memcheck --error-exitcode 99 --print-limit 20 \
    build/fpa_tests_cuda --gtest_filter='-CudaOps.*:CudaMemory.RepeatedStep*:CudaFixtures.*:CudaTrain.*' >"$RESULTS/.san_out"
  san_rc=$?
  case $san_rc in
    0) say "memcheck: clean" ;;
    99) FAILED=1; say "memcheck: ERRORS"; grep -E "^========= (Invalid|Program hit|  at |    by )" "$RESULTS/.san_out" | head -40 >>"$SUMMARY" ;;
    137) say "memcheck: out of time (not a failure)" ;;
    *) FAILED=1; say "memcheck: exit $san_rc (tests failed under the sanitizer, or it could not run)" ;;
  esac
  rm -f "$RESULTS/.san_out"
fi

step "done, $([ $FAILED = 0 ] && echo ALL PASSED || echo FAILURES), results in $RESULTS"
exit $FAILED
