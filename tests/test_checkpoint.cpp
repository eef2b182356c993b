// test_checkpoint.cpp: checkpoint(fn, inputs, params) (ops/checkpoint.cpp) against fn itself:
// the value, first-order gradients of inputs and parameters, second-order gradients through
// it (as the gradient penalty takes them), an input computed from a parameter, parameters
// swapped after the forward, frozen parameters; that the forward keeps none of fn's
// intermediates; and its gradcheck / gradgradcheck cases.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/generator.h"
#include "tests/cpu_memory_log.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// A small block that reads a "parameter" w besides its input: tanh(x w) * x, summed rows.
Tensor block(const Tensor& x, const Tensor& w) { return mul(tanh(matmul(x, w)), x); }

FPA_OP_CASE("checkpoint", "checkpoint_inputs", {{3, 4}, {4, 4}},
            [](const V& x) { return checkpoint([](const V& in) { return block(in[0], in[1]); }, {x[0], x[1]}, {}); });
FPA_OP_CASE("checkpoint", "checkpoint_parameter", {{3, 4}, {4, 4}}, [](const V& x) {
  static Tensor w;  // a parameter slot (it must outlive the backward), read by fn instead of passed in
  w = x[1];
  return checkpoint([](const V& in) { return block(in[0], w); }, {x[0]}, {&w});
});

Tensor random(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return randn(s, DType::f64, Device::cpu, &gen);
}

// Value, dL/dx and dL/dw with L = sum(out^2), and the second order d<dL/dx, dL/dx>/dw.
V all_orders(bool checkpointed) {
  Tensor x = random({5, 4}, 1).requires_grad_(), w = random({4, 4}, 2).requires_grad_();
  Tensor pre = mul_scalar(x, 0.5);  // the input is an intermediate of the caller's graph
  Tensor out = checkpointed ? checkpoint([&w](const V& in) { return block(in[0], w); }, {pre}, {&w}) : block(pre, w);
  V g = grad({sum(square(out))}, {x, w}, {}, true, true);
  Tensor second = grad({sum(square(g[0]))}, {w})[0];
  return {out, g[0], g[1], second};
}

TEST(Checkpoint, EqualsTheFunctionToSecondOrder) {
  const V plain = all_orders(false), checkpointed = all_orders(true);
  const char* names[] = {"value", "dx", "dw", "second order"};
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_CLOSE_TOL(checkpointed[i], plain[i], 1e-13, 1e-12);
  }
}

TEST(Checkpoint, RecomputesWithTheForwardsParameters) {
  Tensor x = random({3, 4}, 3).requires_grad_(), w = random({4, 4}, 4).requires_grad_();
  Tensor slot = w;
  Tensor out = checkpoint([&slot](const V& in) { return block(in[0], slot); }, {x}, {&slot});
  slot = random({4, 4}, 5);  // replaced after the forward (as tests that swap parameters do)
  V g = grad({sum(out)}, {x, w});
  V want = grad({sum(block(x, w))}, {x, w});
  EXPECT_CLOSE(g[0], want[0]);
  EXPECT_CLOSE(g[1], want[1]);
  EXPECT_FALSE(same_bits(slot, w)) << "the slot is given back what it held";
}

TEST(Checkpoint, FrozenParametersGetNoGradient) {
  Tensor x = random({3, 4}, 6).requires_grad_(), w = random({4, 4}, 7);  // w does not require grad
  Tensor out = checkpoint([&w](const V& in) { return block(in[0], w); }, {x}, {&w});
  EXPECT_CLOSE(grad({sum(out)}, {x})[0], grad({sum(block(x, w))}, {x})[0]);
}

// After the forward, a chain of 8 maps keeps only its output (the plain chain keeps all 8).
TEST(Checkpoint, ForwardKeepsNoIntermediates) {
  Tensor x = random({64, 64}, 8).requires_grad_();
  auto chain = [](const V& in) {
    Tensor y = in[0];
    for (int i = 0; i < 8; ++i) y = tanh(mul_scalar(y, 1.1));
    return y;
  };
  const size_t map = 64 * 64 * sizeof(double);
  size_t plain = 0, checkpointed = 0;
  {
    CpuMemoryLog bytes;
    Tensor y = chain({x});
    plain = bytes.now();
  }
  {
    CpuMemoryLog bytes;
    Tensor y = checkpoint(chain, {x}, {});
    checkpointed = bytes.now();
  }
  EXPECT_GE(plain, 8 * map);
  EXPECT_LE(checkpointed, map);
}

}  // namespace
}  // namespace fpa::test
