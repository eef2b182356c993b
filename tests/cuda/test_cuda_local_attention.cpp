// test_cuda_local_attention.cpp: the fused local attention primitives on CUDA against the CPU
// (out, the saved attn, and dq, dk, dv), float32 and float64: kernels 1 to 7, maps smaller
// than the kernel, odd sizes that leave part of a tile idle, the discriminator's shape
// (d = 64, kernel 3), many planes; the op (forward and gradients) on both devices; and the
// neighbourhood primitives its second order is written with.
#include <cmath>

#include "autograd/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

struct AttentionCase {
  int64_t planes, d, H, W, kernel;
};

std::string attention_label(const char* what, const AttentionCase& c, DType t) {
  return std::string(what) + " " + dtype_label(t) + " planes " + std::to_string(c.planes) + " d " +
         std::to_string(c.d) + " " + std::to_string(c.H) + "x" + std::to_string(c.W) + " kernel " +
         std::to_string(c.kernel);
}

// Similarities reach tens (q, k in [-2, 2), d = 64), so a rounding of a similarity moves a
// softmax weight by about eps * |sim|: both backends are that far from the exact result.
Tolerance attention_tolerance(DType t) {
  return t == DType::f32 ? Tolerance{2e-5, 1e-4, true} : Tolerance{5e-14, 1e-11, true};
}

TEST(CudaLocalAttention, ForwardAndBackwardMatchTheCpu) {
  REQUIRE_CUDA();
  std::vector<AttentionCase> cases = {{1, 1, 1, 1, 3}, {2, 4, 5, 7, 3}, {3, 8, 8, 8, 1},     {2, 5, 6, 9, 5},
                                      {1, 3, 4, 4, 7}, {2, 2, 1, 9, 3}, {16, 64, 16, 16, 3}, {4, 64, 13, 11, 3}};
  if (large_cases()) {
    cases.push_back({4, 64, 33, 35, 3});
    cases.push_back({256, 64, 8, 8, 3});
    cases.push_back({64, 64, 32, 32, 3});
  }
  for (const AttentionCase& c : cases)
    for (DType t : kDtypes) {
      const Shape maps = {c.planes, c.d, c.H, c.W}, weights = {c.planes, c.kernel * c.kernel, c.H * c.W};
      Buffers q, k, v, out, attn;  // made inside the case, so a failure there is blamed on it
      run_case(attention_label("local_attention", c, t), [&] {
        // q and k in [-2, 2): similarities large enough for a softmax far from uniform.
        q = uniform(maps, t, 1, -2, 2), k = uniform(maps, t, 2, -2, 2), v = uniform(maps, t, 3);
        out = filled(maps, t), attn = filled(weights, t);
        on_both([&](Device d) {
          backend(d).local_attention(t, c.planes, c.d, c.H, c.W, c.kernel, q.on(d), k.on(d), v.on(d), out.on(d),
                                     attn.on(d));
        });
        EXPECT_MATCH(out, attention_tolerance(t));
        EXPECT_MATCH(attn, attention_tolerance(t));
      });
      run_case(attention_label("local_attention_backward", c, t), [&] {
        Buffers dout = uniform(maps, t, 4), dq = filled(maps, t), dk = filled(maps, t), dv = filled(maps, t);
        // Both sides start from the CPU's attn, so only the backward is compared.
        Buffers saved = {attn.host, attn.host.to(Device::cuda)};
        on_both([&](Device d) {
          backend(d).local_attention_backward(t, c.planes, c.d, c.H, c.W, c.kernel, q.on(d), k.on(d), v.on(d),
                                              saved.on(d), dout.on(d), dq.on(d), dk.on(d), dv.on(d));
        });
        EXPECT_MATCH(dq, attention_tolerance(t));
        EXPECT_MATCH(dk, attention_tolerance(t));
        EXPECT_MATCH(dv, attention_tolerance(t));
      });
    }
}

// The op on CUDA: the fused forward and its gradients against the same op on the CPU, and
// against its composed twin (neighbour_dot, softmax, neighbour_sum) on CUDA.
TEST(CudaLocalAttention, OpAndItsComposedTwinAgreeAcrossDevices) {
  REQUIRE_CUDA();
  for (DType t : kDtypes)
    run_case(std::string("local_attention op ") + dtype_label(t), [&] {
      Philox gen(5);
      const Shape s = {3, 8, 7, 6};
      Tensor q = rand(s, t, Device::cpu, &gen, -2, 2), k = rand(s, t, Device::cpu, &gen, -2, 2),
             v = rand(s, t, Device::cpu, &gen, -1, 1), g = rand(s, t, Device::cpu, &gen, -1, 1);
      auto run = [&](Device dev, bool composed) {
        Tensor qd = q.to(dev).requires_grad_(), kd = k.to(dev).requires_grad_(), vd = v.to(dev).requires_grad_();
        Tensor out = composed ? local_attention_composed(qd, kd, vd, 3) : local_attention(qd, kd, vd, 3);
        std::vector<Tensor> grads = fpa::grad({out}, {qd, kd, vd}, {g.to(dev)});
        return std::vector<Tensor>{out, grads[0], grads[1], grads[2]};
      };
      const std::vector<Tensor> cpu = run(Device::cpu, false), fused = run(Device::cuda, false),
                                composed = run(Device::cuda, true);
      const char* names[] = {"out", "dq", "dk", "dv"};
      for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(matches(fused[i], cpu[i], attention_tolerance(t))) << "fused " << names[i];
        EXPECT_TRUE(matches(composed[i], cpu[i], attention_tolerance(t))) << "composed " << names[i];
      }
    });
}

// The neighbourhood primitives (what the penalty's second order runs) against the CPU.
TEST(CudaNeighbourhood, PrimitivesMatchTheCpu) {
  REQUIRE_CUDA();
  std::vector<AttentionCase> cases = {{1, 1, 1, 1, 3}, {2, 4, 5, 7, 3}, {3, 8, 8, 8, 1}, {2, 5, 6, 9, 5},
                                      {1, 3, 4, 4, 7}, {2, 2, 1, 9, 3}, {16, 64, 16, 16, 3}};
  if (large_cases()) cases.push_back({64, 64, 32, 32, 3});
  for (const AttentionCase& c : cases)
    for (DType t : kDtypes)
      run_case(attention_label("neighbour_dot, neighbour_sum, neighbour_transpose", c, t), [&] {
        const Shape maps = {c.planes, c.d, c.H, c.W}, weights = {c.planes, c.kernel * c.kernel, c.H, c.W};
        Buffers a = uniform(maps, t, 11, -2, 2), b = uniform(maps, t, 12, -2, 2), w = uniform(weights, t, 13);
        Buffers dot = filled(weights, t), sum = filled(maps, t), transposed = filled(weights, t);
        on_both([&](Device d) {
          const Backend& be = backend(d);
          be.neighbour_dot(t, c.planes, c.d, c.H, c.W, c.kernel, a.on(d), b.on(d), dot.on(d));
          be.neighbour_sum(t, c.planes, c.d, c.H, c.W, c.kernel, w.on(d), b.on(d), sum.on(d));
          be.neighbour_transpose(t, c.planes, c.H, c.W, c.kernel, w.on(d), transposed.on(d));
        });
        EXPECT_MATCH(dot, attention_tolerance(t));
        EXPECT_MATCH(sum, attention_tolerance(t));
        EXPECT_MATCH(transposed, kExact);
      });
}

}  // namespace
}  // namespace fpa::test::cuda
