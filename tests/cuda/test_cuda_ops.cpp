// test_cuda_ops.cpp: whole differentiable ops run on CUDA tensors (`.to(Device::cuda)`)
// against the same ops on the CPU, value and gradients (random upstream gradient), float32
// and float64: conv2d with groups and bias, depthwise, transposed convolution, softmax,
// matmul with broadcast batches, linear, pooling, resizing, group norm, the fused channel norm,
// shape ops, and a second-order gradient (create_graph) as the discriminator's penalty needs.
#include <cmath>

#include "autograd/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

using Inputs = std::vector<Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;

struct OpCheck {
  std::string label;
  std::vector<Shape> shapes;
  OpFn fn;
};

// Output and input gradients of fn on one device.
std::vector<Tensor> value_and_grads(const OpFn& fn, const Inputs& host_inputs, const Tensor& host_upstream,
                                    Device dev) {
  Inputs xs;
  for (const Tensor& x : host_inputs) xs.push_back(x.to(dev).requires_grad_());
  Tensor out = fn(xs);
  std::vector<Tensor> r = {out};
  std::vector<Tensor> grads = fpa::grad({out}, xs, {host_upstream.to(dev)});
  r.insert(r.end(), grads.begin(), grads.end());
  return r;
}

void check_op(const OpCheck& c, DType t) {
  Philox gen(12345);
  Inputs xs;
  for (const Shape& s : c.shapes) xs.push_back(rand(s, t, Device::cpu, &gen, -1, 1));
  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = c.fn(xs);
  }
  Tensor upstream = rand(probe.shape(), t, Device::cpu, &gen, -1, 1);
  const std::vector<Tensor> cpu = value_and_grads(c.fn, xs, upstream, Device::cpu);
  const std::vector<Tensor> gpu = value_and_grads(c.fn, xs, upstream, Device::cuda);
  const Tolerance tol = t == DType::f32 ? Tolerance{3e-5, 1e-4, true} : Tolerance{1e-12, 1e-10, true};
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(gpu[i].device(), Device::cuda) << (i == 0 ? "output" : "gradient " + std::to_string(i - 1));
    EXPECT_TRUE(matches(gpu[i], cpu[i], tol)) << (i == 0 ? "output" : "gradient of input " + std::to_string(i - 1));
  }
}

TEST(CudaOps, ValuesAndGradientsMatchTheCpu) {
  REQUIRE_CUDA();
  const std::vector<OpCheck> checks = {
      {"conv2d groups 2, stride 2, pad 1, bias",
       {{2, 4, 9, 9}, {6, 2, 3, 3}, {6}},
       [](const Inputs& x) {
         return conv2d(x[0], x[1], x[2], {2, 1, 2});
       }},
      {"conv2d depthwise, multiplier 2",
       {{2, 3, 8, 8}, {6, 1, 3, 3}},
       [](const Inputs& x) {
         return conv2d(x[0], x[1], Tensor(), {1, 1, 3});
       }},
      {"conv2d 1x1 with bias",
       {{3, 16, 5, 5}, {8, 16, 1, 1}, {8}},
       [](const Inputs& x) { return conv2d(x[0], x[1], x[2]); }},
      {"conv_transpose2d 4x4 stride 2 pad 1",
       {{2, 3, 5, 5}, {3, 4, 4, 4}, {4}},
       [](const Inputs& x) {
         return conv_transpose2d(x[0], x[1], x[2], {2, 1, 1});
       }},
      {"softmax over the last axis", {{4, 5, 33}}, [](const Inputs& x) { return softmax(mul_scalar(x[0], 5), -1); }},
      {"softmax over a middle axis", {{4, 33, 5}}, [](const Inputs& x) { return softmax(x[0], 1); }},
      {"matmul with a broadcast batch", {{3, 4, 7, 5}, {4, 5, 6}}, [](const Inputs& x) { return matmul(x[0], x[1]); }},
      {"matmul_t, both transposed",
       {{2, 5, 7}, {2, 6, 5}},
       [](const Inputs& x) { return matmul_t(x[0], x[1], true, true); }},
      {"linear", {{6, 10}, {4, 10}, {4}}, [](const Inputs& x) { return linear(x[0], x[1], x[2]); }},
      {"avg_pool2d and adaptive",
       {{2, 3, 9, 9}},
       [](const Inputs& x) { return adaptive_avg_pool2d(avg_pool2d(x[0], 2), 3, 3); }},
      {"interpolate_nearest", {{2, 3, 5, 7}}, [](const Inputs& x) { return interpolate_nearest(x[0], 11, 9); }},
      {"group_norm", {{2, 6, 4, 4}, {6}, {6}}, [](const Inputs& x) { return group_norm(x[0], 3, x[1], x[2]); }},
      {"channel_norm (fused)",
       {{2, 6, 4, 5}, {1, 6, 1, 1}, {1, 6, 1, 1}},
       [](const Inputs& x) { return channel_norm(x[0], x[1], x[2], 1e-5); }},
      {"channel_norm (fused), 130 channels, more positions than a dg/db block has threads",
       {{3, 130, 13, 11}, {1, 130, 1, 1}, {1, 130, 1, 1}},
       [](const Inputs& x) { return channel_norm(x[0], x[1], x[2], 1e-5); }},
      {"mean, var, max over axes",
       {{3, 4, 5}},
       [](const Inputs& x) {
         return add(mean(x[0], {0}, true), add(var(x[0], {0, 2}, true), max(x[0], {0}, true)));
       }},
      {"gelu, tanh, sigmoid, erf",
       {{5, 7}},
       [](const Inputs& x) { return mul(gelu(x[0]), add(tanh(x[0]), sigmoid(erf(x[0])))); }},
      {"permute, flip, pad, slice, concat",
       {{2, 3, 4}, {2, 3, 4}},
       [](const Inputs& x) {
         Tensor p = flip(permute(x[0], {2, 0, 1}), {0, 2});
         Tensor q = slice(pad(permute(x[1], {2, 0, 1}), {{1, 2}}, 0.5), 2, 1, 4);
         return concat({p, q}, 1);
       }},
      {"unfold and fold",
       {{2, 3, 6, 6}},
       [](const Inputs& x) { return fold(mul(unfold(x[0], 3, 1, 1), unfold(x[0], 3, 1, 1)), 6, 6, 3, 1, 1); }},
  };
  for (const OpCheck& c : checks)
    for (DType t : kDtypes) run_case("op " + c.label + " " + dtype_label(t), [&] { check_op(c, t); });
}

// d/dx <grad_x(sum(conv(x)^2)), u>, the kind of second-order gradient the penalty needs.
TEST(CudaOps, SecondOrderGradientsMatchTheCpu) {
  REQUIRE_CUDA();
  for (DType t : kDtypes)
    run_case(std::string("second order through conv2d and leaky_relu ") + dtype_label(t), [&] {
      Philox gen(9);
      Tensor x0 = rand({2, 3, 6, 6}, t, Device::cpu, &gen, -1, 1), w0 = rand({4, 3, 3, 3}, t, Device::cpu, &gen, -1, 1);
      auto second = [&](Device dev) {
        Tensor x = x0.to(dev).requires_grad_(), w = w0.to(dev).requires_grad_();
        Tensor y = sum(square(leaky_relu(conv2d(x, w, Tensor(), {1, 1, 1}), 0.2)));
        Tensor gx = fpa::grad({y}, {x}, {}, true, true)[0];
        Tensor penalty = sum(square(gx));
        return fpa::grad({penalty}, {w})[0];
      };
      const Tolerance tol = t == DType::f32 ? Tolerance{3e-5, 1e-4, true} : Tolerance{1e-12, 1e-10, true};
      EXPECT_TRUE(matches(second(Device::cuda), second(Device::cpu), tol));
    });
}

}  // namespace
}  // namespace fpa::test::cuda
