// cpu_peak.h: the machine's fp32 peak for its widest vector unit, and how it was derived:
// cores x clock x FLOP per cycle, with the clock measured (a dependent multiply chain) and
// the FLOP per cycle both assumed from the ISA and measured with an FMA throughput loop.
#pragma once
#include <string>

namespace fpa::bench {

struct CpuPeak {
  int cores;
  double clock_ghz;                 // measured
  const char* isa;                  // "AVX-512", "AVX2" or "scalar"
  int flop_per_cycle;               // lanes x 2 (FMA) x FMA units
  double measured_core_gflops;      // one core, FMA loop
  double peak_gflops() const { return cores * clock_ghz * flop_per_cycle; }
  std::string derivation() const;
};

CpuPeak measure_cpu_peak(int cores);

}  // namespace fpa::bench
