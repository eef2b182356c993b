// test_cuda_lstm_gates.cpp: the LSTM gate primitives (lstm_gates_forward, lstm_gates_backward)
// on CUDA against the CPU on the same inputs, float32 and float64 (the activations written in
// place, c, h; dgates and dc_prev), odd sizes and one large case; the fused recurrence op on
// CUDA against its composed twin on CUDA, output and gradients; and its TF32 switch.
#include <string>

#include "autograd/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

std::string gates_label(const char* what, int64_t B, int64_t H, DType t) {
  return std::string(what) + " " + dtype_label(t) + " B " + std::to_string(B) + " H " + std::to_string(H);
}

// Elementwise formulas of a few roundings each; float sigmoid and tanh are rounded from double
// on both sides, but the compilers fuse multiply-adds in different places, so float32 results
// may differ by a few ulp (1e-6 of values of order 1), float64 by a few ulp of 1e-16.
Tolerance gates_tolerance(DType t) {
  return t == DType::f32 ? Tolerance{1e-6, 1e-6, true} : Tolerance{1e-14, 1e-14, true};
}

TEST(CudaLstmGates, ForwardAndBackwardMatchTheCpu) {
  REQUIRE_CUDA();
  std::vector<std::pair<int64_t, int64_t>> sizes = {{1, 1}, {3, 5}, {4, 64}, {17, 33}};
  if (large_cases()) sizes.push_back({256, 512});
  for (auto [B, H] : sizes)
    for (DType t : kDtypes) {
      const Shape gate_shape = {B, 4 * H}, state = {B, H};
      Buffers gates_out;  // the CPU's activations, the backward's input on both sides
      Buffers c_prev, c;
      run_case(gates_label("lstm_gates_forward", B, H, t), [&] {
        Buffers gates = uniform(gate_shape, t, uint64_t(B * 100 + H), -3, 3);  // preactivations, overwritten
        c_prev = uniform(state, t, 2, -2, 2), c = filled(state, t);
        Buffers h = filled(state, t);
        on_both([&](Device d) {
          backend(d).lstm_gates_forward(t, B, H, gates.on(d), c_prev.on(d), c.on(d), h.on(d));
        });
        EXPECT_MATCH(gates, gates_tolerance(t));
        EXPECT_MATCH(c, gates_tolerance(t));
        EXPECT_MATCH(h, gates_tolerance(t));
        gates_out = {gates.host, gates.host.to(Device::cuda)};
        c = {c.host, c.host.to(Device::cuda)};
      });
      run_case(gates_label("lstm_gates_backward", B, H, t), [&] {
        Buffers dh = uniform(state, t, 3), dc = uniform(state, t, 4), dgates = filled(gate_shape, t);
        on_both([&](Device d) {
          backend(d).lstm_gates_backward(t, B, H, gates_out.on(d), c_prev.on(d), c.on(d), dh.on(d), dc.on(d),
                                         dgates.on(d));
        });
        EXPECT_MATCH(dgates, gates_tolerance(t));
        EXPECT_MATCH(dc, gates_tolerance(t));
      });
    }
}

// The recurrence op takes the fused path on CUDA now; its twin is made of generic CUDA ops.
TEST(CudaLstmGates, FusedRecurrenceMatchesItsComposedTwinOnCuda) {
  REQUIRE_CUDA();
  for (DType t : kDtypes)
    run_case(std::string("lstm_recurrence op ") + dtype_label(t), [&] {
      const int64_t T = 5, B = 3, H = 7;
      Philox gen(11);
      std::vector<Tensor> xs = {rand({T, B, 4 * H}, t, Device::cpu, &gen, -1, 1),
                                rand({4 * H, H}, t, Device::cpu, &gen, -0.4, 0.4),
                                rand({B, H}, t, Device::cpu, &gen, -0.5, 0.5), rand({B, H}, t, Device::cpu, &gen, -1, 1)};
      const Tensor g = rand({T + 1, B, H}, t, Device::cpu, &gen, -1, 1).to(Device::cuda);
      for (Tensor& x : xs) x = x.to(Device::cuda).detach().requires_grad_();
      auto run = [&](bool composed) {
        Tensor out = composed ? lstm_recurrence_composed(xs[0], xs[1], xs[2], xs[3])
                              : lstm_recurrence(xs[0], xs[1], xs[2], xs[3]);
        std::vector<Tensor> r = fpa::grad({out}, xs, {g});
        r.insert(r.begin(), out);
        return r;
      };
      const std::vector<Tensor> fused = run(false), composed = run(true);
      const char* names[] = {"out", "dxw", "dW_hh", "dh0", "dc0"};
      // Sums over T and B of gate gradients: a few more roundings than one step's.
      const Tolerance tol = t == DType::f32 ? Tolerance{1e-5, 1e-5, true} : Tolerance{1e-12, 1e-12, true};
      for (size_t i = 0; i < fused.size(); ++i) EXPECT_TRUE(matches(fused[i], composed[i], tol)) << names[i];
    });
}

// With the cuDNN TF32 switch on (the default outside this suite), the recurrence's GEMMs run in
// TF32, as PyTorch's cuDNN LSTM: close to the CPU at TF32's 10-bit mantissa, and exactly the
// FP32 result again once the switch is off (the switch is restored afterwards).
TEST(CudaLstmGates, RecurrenceFollowsTheCudnnTf32Switch) {
  REQUIRE_CUDA();
  run_case("lstm_recurrence float32, TF32 on then off", [&] {
    const int64_t T = 8, B = 16, H = 256;
    Philox gen(12);
    std::vector<Tensor> xs = {rand({T, B, 4 * H}, DType::f32, Device::cpu, &gen, -1, 1),
                              rand({4 * H, H}, DType::f32, Device::cpu, &gen, -0.1, 0.1),
                              rand({B, H}, DType::f32, Device::cpu, &gen, -1, 1),
                              rand({B, H}, DType::f32, Device::cpu, &gen, -1, 1)};
    const Tensor cpu = lstm_recurrence(xs[0], xs[1], xs[2], xs[3]);
    auto on_gpu = [&] {
      return lstm_recurrence(xs[0].to(Device::cuda), xs[1].to(Device::cuda), xs[2].to(Device::cuda),
                             xs[3].to(Device::cuda));
    };
    const Tensor fp32_before = on_gpu();
    set_cuda_tf32(true);
    Tensor tf32;
    try {
      tf32 = on_gpu();
    } catch (...) {
      set_cuda_tf32(false);
      throw;
    }
    set_cuda_tf32(false);
    const Tensor fp32_after = on_gpu();
    EXPECT_TRUE(matches(tf32, cpu, Tolerance{3e-3, 1e-2, true})) << "TF32";
    EXPECT_TRUE(matches(fp32_before, cpu, Tolerance{1e-5, 1e-5, true})) << "FP32";
    EXPECT_TRUE(matches(fp32_after, fp32_before, kExact)) << "FP32 after the switch went off again";
  });
}

}  // namespace
}  // namespace fpa::test::cuda
