// bench_ops.cpp: `make bench-ops`. GFLOP/s of the CPU backend's GEMM (1024^3 and the
// paper's LSTM shapes) and conv2d forward/backward at a discriminator shape, printed next to
// the machine's fp32 peak (tools/cpu_peak.h) with the fraction of it each one reaches.
// A benchmark, not a test: it asserts nothing, it reports.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <map>
#include <string>

#include "ops/backend.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/ops.h"
#include "tools/cpu_peak.h"

using namespace fpa;

namespace {

void set_flop(benchmark::State& st, double flop) { st.counters["flop"] = flop; }

// C (M, N) = A (M, K) B (K, N), or B given as (N, K) when trans_b.
void BM_matmul(benchmark::State& st, int64_t M, int64_t N, int64_t K, bool trans_b) {
  NoGradGuard ng;
  Tensor a = randn({M, K}), b = trans_b ? randn({N, K}) : randn({K, N});
  for (auto _ : st) benchmark::DoNotOptimize(matmul_t(a, b, false, trans_b).data());
  set_flop(st, 2.0 * M * N * K);
}

struct ConvShape {
  int64_t N, C, H, W, K, R, stride, pad;
};
ConvGeom geom(const ConvShape& s) {
  int64_t OH = (s.H + 2 * s.pad - s.R) / s.stride + 1, OW = (s.W + 2 * s.pad - s.R) / s.stride + 1;
  return ConvGeom{s.N, s.C, s.H, s.W, s.K, s.R, s.R, OH, OW, s.stride, s.stride, s.pad, s.pad, 1};
}
double conv_flop(const ConvGeom& g) { return 2.0 * g.N * g.Cout * g.OH * g.OW * g.Cin * g.KH * g.KW; }

void BM_conv2d_forward(benchmark::State& st, ConvShape s) {
  NoGradGuard ng;
  Tensor x = randn({s.N, s.C, s.H, s.W}), w = randn({s.K, s.C, s.R, s.R});
  for (auto _ : st) benchmark::DoNotOptimize(conv2d(x, w, Tensor(), {s.stride, s.pad, 1}).data());
  set_flop(st, conv_flop(geom(s)));
}

void BM_conv2d_backward_data(benchmark::State& st, ConvShape s) {
  ConvGeom g = geom(s);
  Tensor dy = randn({g.N, g.Cout, g.OH, g.OW}), w = randn({s.K, s.C, s.R, s.R}), dx = empty({s.N, s.C, s.H, s.W});
  for (auto _ : st) backend(Device::cpu).conv2d_backward_data(DType::f32, g, dy.data(), w.data(), dx.data());
  set_flop(st, conv_flop(g));
}

void BM_conv2d_backward_filter(benchmark::State& st, ConvShape s) {
  ConvGeom g = geom(s);
  Tensor x = randn({s.N, s.C, s.H, s.W}), dy = randn({g.N, g.Cout, g.OH, g.OW}), dw = empty({s.K, s.C, s.R, s.R});
  for (auto _ : st) backend(Device::cpu).conv2d_backward_filter(DType::f32, g, x.data(), dy.data(), dw.data());
  set_flop(st, conv_flop(g));
}

// Prints Google Benchmark's table, then GFLOP/s and % of peak per benchmark.
class PeakReporter : public benchmark::ConsoleReporter {
 public:
  explicit PeakReporter(double peak) : peak_(peak) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      auto it = r.counters.find("flop");
      if (it == r.counters.end() || r.iterations == 0) continue;
      double seconds = r.real_accumulated_time / double(r.iterations);
      gflops_[r.run_name.function_name] = it->second.value / seconds / 1e9;
    }
  }
  void summary(const std::map<std::string, double>& targets) const {
    std::printf("\n%-58s %10s %9s %8s\n", "benchmark (float32)", "GFLOP/s", "of peak", "target");
    for (const auto& [name, g] : gflops_) {
      auto t = targets.find(name);
      std::string target = t == targets.end() ? "" : std::to_string(int(t->second * 100)) + "%";
      std::string verdict = t == targets.end() ? "" : (g / peak_ >= t->second ? "  met" : "  MISSED");
      std::printf("%-58s %10.1f %8.1f%% %8s%s\n", name.c_str(), g, 100 * g / peak_, target.c_str(), verdict.c_str());
    }
  }

 private:
  double peak_;
  std::map<std::string, double> gflops_;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = omp_get_max_threads();
  bench::CpuPeak peak = bench::measure_cpu_peak(threads);
  std::printf("threads: %d; GEMM: %s\n%s\n\n", threads, cpu::gemm_implementation(), peak.derivation().c_str());

  auto reg = [](const std::string& name, auto fn, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), fn, args...)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
  };
  reg("sgemm 1024x1024x1024", BM_matmul, 1024, 1024, 1024, false);
  // paper-rgb64-T64 LSTM (B 20, T 64, I 128, H 1024): input projection for all steps, one
  // recurrent step, and the kvb head (C(2S+1) = 387 outputs) over all steps.
  reg("lstm input proj (1280x128) W_ih^T (128x4096)", BM_matmul, 1280, 4096, 128, true);
  reg("lstm recurrent step (20x1024) W_hh^T (1024x4096)", BM_matmul, 20, 4096, 1024, true);
  reg("kvb head (1280x1024) W^T (1024x387)", BM_matmul, 1280, 387, 1024, true);
  ConvShape d{32, 256, 16, 16, 256, 3, 1, 1};  // discriminator 3x3, 256 -> 256 at 16x16, batch 32
  reg("conv2d forward 3x3 256->256 16x16 batch 32", BM_conv2d_forward, d);
  reg("conv2d backward data 3x3 256->256 16x16 batch 32", BM_conv2d_backward_data, d);
  reg("conv2d backward filter 3x3 256->256 16x16 batch 32", BM_conv2d_backward_filter, d);
  ConvShape down{32, 128, 32, 32, 256, 4, 2, 1};  // discriminator 4x4 stride 2, 128 -> 256 at 32x32
  reg("conv2d forward 4x4 s2 128->256 32x32 batch 32", BM_conv2d_forward, down);

  benchmark::Initialize(&argc, argv);
  PeakReporter reporter(peak.peak_gflops());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.summary({{"sgemm 1024x1024x1024", 0.50}, {"conv2d forward 3x3 256->256 16x16 batch 32", 0.35}});
  benchmark::Shutdown();
  return 0;
}
