#!/usr/bin/env bash
# blas_kernels.sh: runs a test binary once per OpenBLAS kernel set this CPU can execute
# (OPENBLAS_CORETYPE: SSE3 Prescott, Nehalem, AVX Sandybridge, AVX2 Haswell and Zen, AVX-512
# SkylakeX and Cooperlake) and once with FPA_NO_BLAS=1 (the portable kernel), so results that
# must not depend on the kernels OpenBLAS picks on a user's machine are checked under each.
# Without OpenBLAS installed only the portable run is made.
#   bash tools/blas_kernels.sh BINARY [ARGS...]      (FPA_BIN=build/fpa also names each kernel set)
set -uo pipefail
binary=$1
shift
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
kernels=()
has pni && kernels+=(Prescott)  # SSE3
has sse4_2 && kernels+=(Nehalem)
has avx && kernels+=(Sandybridge)
has avx2 fma && kernels+=(Haswell Zen)
has avx512f avx512bw avx512vl avx512dq avx512cd && kernels+=(SkylakeX)
has avx512f avx512bw avx512vl avx512dq avx512cd avx512_bf16 && kernels+=(Cooperlake)
if ! ls /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 >/dev/null 2>&1; then
  echo "blas_kernels: no OpenBLAS (libopenblas0-openmp) here: the portable kernel only"
  kernels=()
fi
failed=()
for k in "${kernels[@]}" none; do
  if [ "$k" = none ]; then
    label="FPA_NO_BLAS=1 (portable kernel)"
    env=(FPA_NO_BLAS=1)
  else
    label="OPENBLAS_CORETYPE=$k"
    env=(OPENBLAS_CORETYPE="$k")
    if [ -n "${FPA_BIN:-}" ]; then
      label+=" ($(env "${env[@]}" "$FPA_BIN" --version | sed -n 's/.*kernels \(.*\)/kernels \1/p'))"
    fi
  fi
  echo "== blas_kernels: $label"
  env "${env[@]}" "$binary" "$@" || failed+=("$label")
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'blas_kernels: FAILED under %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "blas_kernels: passed under ${#kernels[@]} OpenBLAS kernel sets and the portable kernel"
