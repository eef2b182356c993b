// bench_ops.cpp: `make bench-ops`. GFLOP/s of the CPU backend's GEMM (1024^3 and the
// paper's LSTM shapes) and conv2d forward/backward at a discriminator shape, printed next to
// the machine's fp32 peak (tools/cpu_peak.h) with the fraction of it each one reaches; and the
// fused ops (the painting, the local attention, the LSTM recurrence) against their composed
// twins, in ms and ratio.
// A benchmark, not a test: it asserts nothing, it reports.
#include <fmt/format.h>
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <map>
#include <string>

#include "ops/backend/backend.h"
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

// The delta-rule painting with the v2 front end (key softmax, rate sigmoid), forward then the
// gradients of all its inputs, in float32: the loop of composed ops or the fused op.
struct PaintShape {
  int64_t B, C, S, T;
};
void BM_paint(benchmark::State& st, PaintShape s, bool fused) {
  const int64_t N = s.B * s.C;
  Tensor k = randn({s.T, N, s.S}).requires_grad_();                       // (T, N, S), before the softmax
  Tensor v = tanh(randn({s.T, N, s.S})).detach().requires_grad_();        // (T, N, S)
  Tensor beta = randn({s.T, N, 1}).requires_grad_(), g = randn({N, s.S, s.S});  // (T, N, 1); dL/dW_T
  PaintFrontEnd fe;
  fe.key_softmax = fe.rate_sigmoid = true;
  for (auto _ : st) {
    Tensor W = fused ? paint_fused(PaintRule::delta, k, v, beta, Tensor(), fe)
                     : paint_composed(PaintRule::delta, k, v, beta, Tensor(), fe);
    benchmark::DoNotOptimize(grad({W}, {k, v, beta}, {g})[0].data());
  }
}
std::string paint_label(PaintShape s) {
  return "B " + std::to_string(s.B) + ", C " + std::to_string(s.C) + ", S " + std::to_string(s.S) + ", T " +
         std::to_string(s.T) + ", delta";
}

// The discriminator's local 3x3 attention, forward then the gradients of q, k, v, in float32:
// composed from unfold, broadcast multiply, sum and softmax, or the fused op.
struct AttentionShape {
  int64_t planes, d, H, W;  // planes = batch x heads
};
void BM_local_attention(benchmark::State& st, AttentionShape s, bool fused) {
  const Shape shape = {s.planes, s.d, s.H, s.W};
  Tensor q = randn(shape).requires_grad_(), k = randn(shape).requires_grad_(), v = randn(shape).requires_grad_();
  Tensor g = randn(shape);
  for (auto _ : st) {
    Tensor out = fused ? local_attention(q, k, v, 3) : local_attention_composed(q, k, v, 3);
    benchmark::DoNotOptimize(grad({out}, {q, k, v}, {g})[0].data());
  }
}
std::string attention_label(AttentionShape s) {
  return std::to_string(s.planes) + " planes, d " + std::to_string(s.d) + ", " + std::to_string(s.H) + "x" +
         std::to_string(s.W);
}

// One LSTM layer, forward then the gradients of x and every weight, in float32: the input
// projection GEMM, then the recurrence as a loop of composed ops or as the fused op.
struct LstmShape {
  int64_t T, B, I, H;
};
void BM_lstm(benchmark::State& st, LstmShape s, bool fused) {
  const int64_t H = s.H;
  Tensor x = randn({s.T, s.B, s.I}).requires_grad_();  // (T, B, I)
  Tensor w_ih = mul_scalar(randn({4 * H, s.I}), 0.03).detach().requires_grad_();  // (4H, I)
  Tensor w_hh = mul_scalar(randn({4 * H, H}), 0.03).detach().requires_grad_();    // (4H, H)
  Tensor b_ih = zeros({4 * H}).requires_grad_(), b_hh = zeros({4 * H}).requires_grad_();
  Tensor h0 = zeros({s.B, H}), c0 = zeros({s.B, H}), g = randn({s.T + 1, s.B, H});  // dL/d(h_1..h_T, c_T)
  for (auto _ : st) {
    Tensor xw = reshape(linear(reshape(x, {s.T * s.B, s.I}), w_ih, b_ih + b_hh), {s.T, s.B, 4 * H});
    Tensor out = fused ? lstm_recurrence(xw, w_hh, h0, c0) : lstm_recurrence_composed(xw, w_hh, h0, c0);
    benchmark::DoNotOptimize(grad({out}, {x, w_ih, w_hh, b_ih, b_hh}, {g})[0].data());
  }
}
std::string lstm_label(LstmShape s) {
  return "T " + std::to_string(s.T) + ", B " + std::to_string(s.B) + ", in " + std::to_string(s.I) + ", H " +
         std::to_string(s.H);
}

// Prints Google Benchmark's table, then GFLOP/s and % of peak per benchmark, and each fused
// op's composed and fused times side by side.
class PeakReporter : public benchmark::ConsoleReporter {
 public:
  explicit PeakReporter(double peak) : peak_(peak) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.iterations == 0) continue;
      double seconds = r.real_accumulated_time / double(r.iterations);
      const std::string& name = r.run_name.function_name;  // "WHAT composed: SHAPE" or "WHAT fused: SHAPE"
      for (const char* form : {"composed", "fused"}) {
        size_t at = name.find(std::string(" ") + form + ": ");
        if (at != std::string::npos)
          fused_ms_[name.substr(0, at) + ", " + name.substr(at + std::string(form).size() + 3)][form] = seconds * 1e3;
      }
      auto it = r.counters.find("flop");
      if (it == r.counters.end()) continue;
      gflops_[r.run_name.function_name] = it->second.value / seconds / 1e9;
    }
  }
  void summary(const std::map<std::string, double>& targets) const {
    fmt::print("\n{:<58} {:>10} {:>9} {:>8}\n", "benchmark (float32)", "GFLOP/s", "of peak", "target");
    for (const auto& [name, g] : gflops_) {
      auto t = targets.find(name);
      std::string target = t == targets.end() ? "" : std::to_string(int(t->second * 100)) + "%";
      std::string verdict = t == targets.end() ? "" : (g / peak_ >= t->second ? "  met" : "  MISSED");
      fmt::print("{:<58} {:>10.1f} {:>8.1f}% {:>8}{}\n", name, g, 100 * g / peak_, target, verdict);
    }
    fmt::print("\n{:<66} {:>12} {:>9} {:>15}\n", "fused ops, forward+backward (float32)", "composed ms", "fused ms",
               "composed/fused");
    for (const auto& [what, ms] : fused_ms_) {
      auto c = ms.find("composed"), f = ms.find("fused");
      if (c == ms.end() || f == ms.end()) continue;
      fmt::print("{:<66} {:>12.2f} {:>9.2f} {:>14.1f}x\n", what, c->second, f->second, c->second / f->second);
    }
  }

 private:
  double peak_;
  std::map<std::string, double> gflops_;
  std::map<std::string, std::map<std::string, double>> fused_ms_;  // "WHAT, SHAPE" -> form -> ms
};

}  // namespace

int main(int argc, char** argv) {
  int threads = omp_get_max_threads();
  bench::CpuPeak peak = bench::measure_cpu_peak(threads);
  fmt::print("cpu: {}\n{}\n\n", backend(Device::cpu).summary(), peak.derivation());

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
  for (PaintShape s : {PaintShape{20, 3, 64, 64}, PaintShape{32, 1, 32, 32}})  // paper-rgb64-T64, cpu-small
    for (bool fused : {false, true})
      reg(std::string("painter fwd+bwd ") + (fused ? "fused: " : "composed: ") + paint_label(s), BM_paint, s, fused);
  // cpu-small's discriminator (batch 32 x 2 heads, d 16, 32x32) and the paper's (batch 20 x 8 heads, d 64, 32x32)
  for (AttentionShape s : {AttentionShape{64, 16, 32, 32}, AttentionShape{160, 64, 32, 32}})
    for (bool fused : {false, true})
      reg(std::string("local attention 3x3 fwd+bwd ") + (fused ? "fused: " : "composed: ") + attention_label(s),
          BM_local_attention, s, fused);

  // paper-rgb64-T64's LSTM (mini_input 128, hidden 1024) and cpu-small's (mini_input 64, hidden 256)
  for (LstmShape s : {LstmShape{64, 20, 128, 1024}, LstmShape{32, 16, 64, 256}})
    for (bool fused : {false, true})
      reg(std::string("lstm layer fwd+bwd ") + (fused ? "fused: " : "composed: ") + lstm_label(s), BM_lstm, s, fused);

  benchmark::Initialize(&argc, argv);
  PeakReporter reporter(peak.peak_gflops());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.summary({{"sgemm 1024x1024x1024", 0.50}, {"conv2d forward 3x3 256->256 16x16 batch 32", 0.35}});
  benchmark::Shutdown();
  return 0;
}
