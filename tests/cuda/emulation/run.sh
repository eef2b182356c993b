#!/usr/bin/env bash
# run.sh: the CUDA suite (tests/cuda) against the CUDA backend's kernels compiled with g++ and
# run on the host, for checking kernel indexing and planning where there is no GPU. Slow
# (cooperative kernels run 256 threads per block), so small cases only (FPA_CUDA_TEST_SMALL=1).
# What it cannot check: cuBLAS, cuDNN, the allocator, streams, real GPU arithmetic (those
# entries come from the CPU backend here, and the table/allocator tests are left out). The
# host code around the kernels (errors, graphs, staging) runs on a fake runtime with injected
# faults (fake_cuda_runtime.h, tests/cuda/emulation/test_*.cpp).
#   bash tests/cuda/emulation/run.sh [gtest flags]       (builds into build/cuda_emulation)
# SANITIZE=1: everything built with AddressSanitizer and UBSan (build/cuda_emulation_asan), so a
# kernel indexing past a tensor, or past its shared memory, stops the run with the kernel's line.
# Slow (about 20 minutes on two cores, mostly the cooperative kernels' threads), so it leaves out
# the whole-model fixtures (CudaFixtures.*: their kernels are the primitives tested already, and
# the U-Net alone takes 8 minutes); name them in a --gtest_filter to run them.
set -euo pipefail
cd "$(dirname "$0")/../../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ "${SANITIZE:-0}" = 1 ]; then
  OUT=build/cuda_emulation_asan
  SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
  SKIP=:CudaFixtures.*
else
  OUT=build/cuda_emulation
  SAN=()
  SKIP=
fi
mkdir -p "$OUT/obj"
# The library without the CUDA backend (its own build folder).
[ ${#SAN[@]} = 0 ] || export CXXFLAGS="-O1 -g -march=native ${SAN[*]}" LDLIBS="${SAN[*]}"
make NVCC= BUILD="$OUT/cpu" -j"${JOBS:-2}" "$OUT/cpu/fpa" >"$OUT/make.log" 2>&1 || { tail -30 "$OUT/make.log"; exit 1; }
KERNEL_FLAGS=(-O1 -g -std=c++17 -fopenmp -ffp-contract=off -Itests/cuda/emulation -I. -I"$CUDA_HOME/include"
              -include tests/cuda/emulation/cuda_host_shim.h -Wno-attributes -Wno-unknown-pragmas "${SAN[@]}")
objects=()
# The kernels, and the host code around them that runs on the fake runtime (fake_cuda_runtime.h).
SOURCES=(cuda_elementwise cuda_reduce cuda_pool cuda_random cuda_adam cuda_local_attention cuda_paint cuda_paint_backward
         cuda_lstm cuda_channel_norm cuda_conv cuda_errors cuda_graph cuda_staging)
for f in "${SOURCES[@]}"; do
  o=$OUT/obj/$f.o
  if [ ! -f "$o" ] || [ -n "$(find ops/backend/cuda tests/cuda/emulation -newer "$o" -print -quit)" ]; then
    g++ "${KERNEL_FLAGS[@]}" -x c++ -c "ops/backend/cuda/$f.cu" -o "$o"
  fi
  objects+=("$o")
done
# The emulated table, and the tests that inject faults into the fake runtime (emulation only).
for f in tests/cuda/emulation/*.cpp; do
  g++ "${KERNEL_FLAGS[@]}" -c "$f" -o "$OUT/obj/$(basename "$f" .cpp).o"
  objects+=("$OUT/obj/$(basename "$f" .cpp).o")
done
HEADERS="autograd ops nn fpa train data tests"  # a test object is rebuilt when any header is newer
# test_cuda_faults.cpp drives the real runtime: GPU only.
for f in $(ls tests/cuda/*.cpp | grep -v test_cuda_faults.cpp) tests/op_cases.cpp tests/op_cases/*.cpp \
  tests/fixture_checks.cpp tests/test_conformance.cpp; do
  o=$OUT/obj/$(basename "$f" .cpp).o
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ -n "$(find $HEADERS -name '*.h' -newer "$o" -print -quit)" ]; then
    g++ -O1 -g -std=c++17 -fopenmp -I. "${SAN[@]}" -c "$f" -o "$o"
  fi
  objects+=("$o")
done
# The library's objects by its sources (an object left from a removed source is not linked).
mapfile -t library < <(for f in {autograd,ops,ops/backend,ops/backend/cpu,ops/backend/stub,nn,fpa,train,data}/*.cpp; do echo "$OUT/cpu/obj/${f%.cpp}.o"; done)
# cuda_conv.cu refers to cuDNN (its convolutions are never called here): link it, never load it.
g++ "${library[@]}" "${objects[@]}" -o "$OUT/fpa_tests_emulated" "${SAN[@]}" -lgtest -lgtest_main -fopenmp -ldl -lpthread -lz \
  -lpng -ljpeg -lfmt -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -Wl,--as-needed -lcudnn -lcudart
FPA_CUDA_TEST_SMALL=${FPA_CUDA_TEST_SMALL:-1} "$OUT/fpa_tests_emulated" \
  --gtest_filter="-CudaBackend.*:CudaMemory.AllocatorReusesFreedBlocks:CudaMemory.PeaksOfBytesInUseAndReserved$SKIP" "$@"
