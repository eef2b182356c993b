// cpu_peak.cpp: measures the clock and the FMA throughput behind the printed fp32 peak.
#include "tools/cpu_peak.h"

#include <fmt/format.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

namespace fpa::bench {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// imul has a latency of 3 cycles on every recent x86 core: 4 dependent imuls = 12 cycles.
// The best of several short runs, so a busy neighbour does not lower the figure.
double measure_clock_ghz() {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const uint64_t iters = 50000000ULL;
    uint64_t x = 3;
    auto t = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < iters; ++i)
      asm volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(x));
    best = std::max(best, 12.0 * iters / seconds_since(t) / 1e9);
  }
  return best;
}

// 12 independent FMA chains (explicit registers) hide the latency; GFLOP/s on one core.
#define FMA12(fma)                                                                  \
  a0 = fma(a0, m, c), a1 = fma(a1, m, c), a2 = fma(a2, m, c), a3 = fma(a3, m, c),   \
  a4 = fma(a4, m, c), a5 = fma(a5, m, c), a6 = fma(a6, m, c), a7 = fma(a7, m, c),   \
  a8 = fma(a8, m, c), a9 = fma(a9, m, c), a10 = fma(a10, m, c), a11 = fma(a11, m, c)
#define FMA_LOOP(vec, set1, fma, lanes)                                             \
  const vec m = set1(0.9999f), c = set1(0.0001f);                                   \
  vec a0 = set1(0.f), a1 = set1(.1f), a2 = set1(.2f), a3 = set1(.3f), a4 = set1(.4f),  \
      a5 = set1(.5f), a6 = set1(.6f), a7 = set1(.7f), a8 = set1(.8f), a9 = set1(.9f),  \
      a10 = set1(1.f), a11 = set1(1.1f);                                            \
  const long iters = 50000000;                                                      \
  auto t = std::chrono::steady_clock::now();                                        \
  for (long i = 0; i < iters; ++i) FMA12(fma);                                      \
  double s = seconds_since(t);                                                      \
  vec sum = a0;                                                                     \
  for (vec v : {a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11}) sum = fma(sum, m, v); \
  volatile float sink = reinterpret_cast<float*>(&sum)[0];                          \
  (void)sink;                                                                       \
  return iters * 12.0 * 2 * lanes / s / 1e9

__attribute__((target("avx512f"))) double fma_gflops_avx512() { FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16); }
__attribute__((target("avx2,fma"))) double fma_gflops_avx2() { FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8); }

}  // namespace

std::string CpuPeak::derivation() const {
  return fmt::format(
      "fp32 peak = {} cores x {:.2f} GHz (measured: dependent imul chain) x {} FLOP/cycle "
      "({}: {} lanes x 2 for FMA x 2 FMA units) = {:.0f} GFLOP/s\n"
      "  check: one core's FMA loop ran {:.1f} GFLOP/s = {:.1f} FLOP/cycle at the measured clock",
      cores, clock_ghz, flop_per_cycle, isa, flop_per_cycle / 4, peak_gflops(), measured_core_gflops,
      measured_core_gflops / clock_ghz);
}

CpuPeak measure_cpu_peak(int cores) {
  CpuPeak p{cores, measure_clock_ghz(), "scalar", 2, 0.0};
  if (__builtin_cpu_supports("avx512f")) {
    p.isa = "AVX-512", p.flop_per_cycle = 64, p.measured_core_gflops = fma_gflops_avx512();
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    p.isa = "AVX2", p.flop_per_cycle = 32, p.measured_core_gflops = fma_gflops_avx2();
  }
  return p;
}

}  // namespace fpa::bench
