// test_lstm_fused.cpp: the fused LSTM recurrence (ops/lstm_recurrence.cpp,
// ops/backend/cpu/cpu_lstm.cpp) against its composed twin: the output and the gradients of xw,
// W_hh, h0 and c0 in float64 to 1e-10 of max|ref| for T = 1 and T > 1, B = 1 and B > 1, odd H;
// float32 against float64; the second order's composed fallback, whose values must equal the fused
// backward's; the same bits on 1 and 2 threads; that nn::LSTM runs it, its GEMMs in the recurrent
// precision class. Its op cases: tests/op_cases/lstm_fused_cases.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/philox.h"
#include "nn/lstm.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"

namespace fpa {
const Backend& cpu_backend();
}

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

struct Inputs {
  Tensor xw, w_hh, h0, c0;  // (T, B, 4H), (4H, H), (B, H), (B, H)
  V list() const { return {xw, w_hh, h0, c0}; }
};

Inputs make_inputs(int64_t T, int64_t B, int64_t H, DType dt, uint64_t seed) {
  Philox gen(seed);
  Inputs in;
  in.xw = randn({T, B, 4 * H}, DType::f64, Device::cpu, &gen);
  in.w_hh = mul_scalar(randn({4 * H, H}, DType::f64, Device::cpu, &gen), 1.0 / std::sqrt(double(H)));
  in.h0 = mul_scalar(randn({B, H}, DType::f64, Device::cpu, &gen), 0.5);
  in.c0 = randn({B, H}, DType::f64, Device::cpu, &gen);
  for (Tensor* t : {&in.xw, &in.w_hh, &in.h0, &in.c0}) *t = t->to(dt).detach().requires_grad_();
  return in;
}

const char* kNames[] = {"dxw", "dW_hh", "dh0", "dc0"};

// Output and all input gradients for one random upstream gradient; `fused` picks the op.
V forward_and_grads(const Inputs& in, bool fused, bool create_graph = false) {
  Tensor out = fused ? lstm_recurrence(in.xw, in.w_hh, in.h0, in.c0)
                     : lstm_recurrence_composed(in.xw, in.w_hh, in.h0, in.c0);
  Philox gen(77);
  Tensor g = randn(out.shape(), DType::f64, Device::cpu, &gen).to(out.dtype());
  V r = grad({out}, in.list(), {g}, true, create_graph);
  r.insert(r.begin(), out);
  return r;
}

TEST(LstmFused, MatchesComposedTwinFloat64) {
  for (int64_t T : {1, 2, 7})
    for (int64_t B : {1, 3})
      for (int64_t H : {1, 5, 9}) {
        SCOPED_TRACE("T=" + std::to_string(T) + " B=" + std::to_string(B) + " H=" + std::to_string(H));
        Inputs in = make_inputs(T, B, H, DType::f64, 100 + T * 16 + B * 4 + H);
        V got = forward_and_grads(in, true), want = forward_and_grads(in, false);
        ASSERT_EQ(got[0].shape(), Shape({T + 1, B, H}));
        expect_near_max(got[0], want[0], 1e-10, "output");
        for (size_t i = 0; i < 4; ++i) expect_near_max(got[i + 1], want[i + 1], 1e-10, kNames[i]);
      }
}

TEST(LstmFused, Float32MatchesFloat64) {
  Inputs in64 = make_inputs(16, 4, 33, DType::f64, 7), in32;
  in32 = {in64.xw.to(DType::f32).detach().requires_grad_(), in64.w_hh.to(DType::f32).detach().requires_grad_(),
          in64.h0.to(DType::f32).detach().requires_grad_(), in64.c0.to(DType::f32).detach().requires_grad_()};
  V ref = forward_and_grads(in64, false), got = forward_and_grads(in32, true), twin = forward_and_grads(in32, false);
  for (size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i == 0 ? "output" : kNames[i - 1]);
    EXPECT_EQ(got[i].dtype(), DType::f32);
    expect_near_max(got[i], ref[i], 1e-5, "float32 fused vs float64");
    expect_near_max(got[i], twin[i], 1e-5, "float32 fused vs float32 composed");
  }
}

TEST(LstmFused, SecondOrderFallbackMatchesFusedFirstOrder) {
  // With create_graph the backward differentiates the composed twin; its values must agree with
  // the fused backward's (gradgradcheck would only see a derivative inconsistent with them).
  Inputs in = make_inputs(4, 2, 5, DType::f64, 21);
  V fused = forward_and_grads(in, true), recorded = forward_and_grads(in, true, true);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_TRUE(recorded[i].requires_grad()) << kNames[i - 1];
    expect_near_max(recorded[i], fused[i], 1e-10, kNames[i - 1]);
  }
}

TEST(LstmFused, SomeGradientsOnly) {
  Inputs in = make_inputs(3, 2, 3, DType::f64, 11);
  Tensor out = lstm_recurrence(in.xw, in.w_hh, in.h0, in.c0);
  Tensor ref = lstm_recurrence_composed(in.xw, in.w_hh, in.h0, in.c0);
  for (const Tensor& x : in.list()) {
    V got = grad({out}, {x}, {ones(out.shape(), DType::f64)}, true);
    V want = grad({ref}, {x}, {ones(ref.shape(), DType::f64)}, true);
    expect_near_max(got[0], want[0], 1e-10, "one input");
  }
}

TEST(LstmFused, ResultDoesNotDependOnThreadCount) {
  Inputs in = make_inputs(6, 20, 1024, DType::f32, 3);  // B*H above the parallel grain
  const int threads = omp_get_max_threads();
  auto run = [&] {
    V r = forward_and_grads(in, true);
    std::vector<std::vector<double>> bits;
    for (const Tensor& t : r) bits.push_back(t.to_vector());
    return bits;
  };
  EXPECT_EQ(with_threads(1, run), with_threads(std::max(2, threads), run));
}

// The CPU backend, its gemm noting the calling thread's GEMM precision class, while it lives.
class GemmPrecisionLog {
 public:
  GemmPrecisionLog() : table_(cpu_backend()) {
    table_.gemm = [](auto... a) {
      seen().push_back(gemm_precision());
      cpu_backend().gemm(a...);
    };
    seen().clear();
    register_backend(Device::cpu, &table_);
  }
  ~GemmPrecisionLog() { register_backend(Device::cpu, &cpu_backend()); }
  int64_t count(GemmPrecision p) const { return std::count(seen().begin(), seen().end(), p); }
  void clear() { seen().clear(); }

 private:
  static std::vector<GemmPrecision>& seen() {
    static std::vector<GemmPrecision> s;
    return s;
  }
  Backend table_;
};

// nn::LSTM's GEMMs run as GemmPrecision::recurrent (CUDA gives them the cuDNN TF32 switch, as
// PyTorch's cuDNN LSTM): the input projection's forward, each step's, and the recurrence's
// backward; the input projection's backward and every other GEMM stay `matmul`.
TEST(LstmFused, GemmsRunInTheRecurrentPrecisionClass) {
  const int64_t T = 5;
  nn::LSTM m(4, 3);
  Tensor x = randn({T, 2, 4}).requires_grad_();
  GemmPrecisionLog log;
  Tensor out = m.forward(x).output;
  EXPECT_EQ(log.count(GemmPrecision::recurrent), 1 + T);
  EXPECT_EQ(log.count(GemmPrecision::matmul), 0);
  log.clear();
  backward(sum(out));
  EXPECT_EQ(log.count(GemmPrecision::recurrent), (T - 1) + 2);  // dh_{t-1} per step, dW_hh in two
  EXPECT_EQ(log.count(GemmPrecision::matmul), 2);               // dx and dW_ih of the projection
  log.clear();
  matmul(x, randn({4, 3}));
  EXPECT_EQ(log.count(GemmPrecision::matmul), 1);
  EXPECT_EQ(gemm_precision(), GemmPrecision::matmul);
}

TEST(LstmFused, LstmModuleUsesTheFusedOp) {
  nn::LSTM m(4, 3);
  Tensor x = randn({2, 2, 4});
  Tensor out = m.forward(x).output;  // a slice of the recurrence's (T + 1, B, H)
  ASSERT_TRUE(out.grad_fn() != nullptr);
  ASSERT_FALSE(out.grad_fn()->inputs.empty());
  ASSERT_TRUE(out.grad_fn()->inputs[0].fn != nullptr);
  EXPECT_EQ(std::string(out.grad_fn()->inputs[0].fn->name), "lstm_recurrence");
  Inputs in = make_inputs(2, 2, 3, DType::f64, 1);
  EXPECT_ERROR(lstm_recurrence(in.xw, in.h0, in.h0, in.c0), "(4H, H)");
  EXPECT_ERROR(lstm_recurrence(in.xw, in.w_hh, in.c0, reshape(in.c0, {3, 2})), "initial states");
}

}  // namespace
}  // namespace fpa::test
