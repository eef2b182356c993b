// test_checkpoint.cpp: checkpoint(fn, inputs, params) (ops/checkpoint.cpp) against fn itself:
// the value, first-order gradients of inputs and parameters, second-order gradients through
// it (as the gradient penalty takes them), an input that is an intermediate, an input computed
// from a parameter, parameters swapped after the forward, frozen parameters, checkpoints
// nested in fn; that the forward keeps none of fn's intermediates, nor a recorded gradient
// fn's graph. Its op cases: tests/op_cases/checkpoint_cases.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/philox.h"
#include "tests/cpu_memory_log.h"
#include "tests/op_cases.h"
#include "tests/op_cases/case_helpers.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// Eight maps in a row: tanh(1.1 y), the memory tests' fn.
Tensor chain(const V& in) {
  Tensor y = in[0];
  for (int i = 0; i < 8; ++i) y = tanh(mul_scalar(y, 1.1));
  return y;
}

Tensor random(const Shape& s, uint64_t seed) {
  Philox gen(seed);
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

// x = a w feeds a block that reads w too: the checkpoint's partial derivatives plus the path
// through x must give the plain total, to second order (the nested grad() must not follow x
// back to w itself).
V input_from_parameter(bool checkpointed) {
  Tensor a = random({5, 4}, 11).requires_grad_(), w = random({4, 4}, 12).requires_grad_();
  Tensor x = matmul(a, w);
  Tensor out = checkpointed ? checkpoint([&w](const V& in) { return block(in[0], w); }, {x}, {&w}) : block(x, w);
  V g = grad({sum(square(out))}, {a, w}, {}, true, true);
  Tensor second = grad({sum(square(g[1]))}, {w})[0];
  return {g[0], g[1], second};
}

TEST(Checkpoint, InputComputedFromAParameter) {
  const V plain = input_from_parameter(false), checkpointed = input_from_parameter(true);
  const char* names[] = {"da", "dw", "second order"};
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_CLOSE_TOL(checkpointed[i], plain[i], 1e-13, 1e-12);
  }
}

// Two levels: checkpointed blocks whose fn checkpoints its halves while its gradient is being
// recorded, as the discriminator's attention does; the same numbers to second order, and
// recomputing_for_recorded_gradient() true exactly in the recomputations that record one.
TEST(Checkpoint, NestedCheckpointsToSecondOrder) {
  std::vector<bool> seen;  // the flag, each time the outer fn runs
  auto run = [&](bool checkpointed) {
    Tensor x = random({5, 4}, 13).requires_grad_(), w = random({4, 4}, 14).requires_grad_();
    auto half = [&w](const V& in) { return block(in[0], w); };
    auto outer = [&](const V& in) {
      if (!checkpointed) return half({half(in)});
      seen.push_back(recomputing_for_recorded_gradient());
      auto inner = [&](const Tensor& t) { return recomputing_for_recorded_gradient() ? checkpoint(half, {t}, {&w})
                                                                                      : half({t}); };
      return inner(inner(in[0]));
    };
    Tensor out = checkpointed ? checkpoint(outer, {x}, {&w}) : outer({x});
    V g = grad({sum(square(out))}, {x, w}, {}, true, true);
    V second = grad({sum(square(g[0]))}, {x, w});
    return V{out, g[0], g[1], second[0], second[1]};
  };
  const V plain = run(false), checkpointed = run(true);
  const char* names[] = {"value", "dx", "dw", "second order x", "second order w"};
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_CLOSE_TOL(checkpointed[i], plain[i], 1e-13, 1e-12);
  }
  // The forward; the recorded gradient's own forward (first order, unrecorded); in the second
  // order, the rebuilding of that gradient (recorded), then the first-order backward through
  // the output (grad_out depends on it).
  EXPECT_EQ(seen, (std::vector<bool>{false, false, true, false}));
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

// The gradient penalty's pattern over a chain of 4 checkpointed blocks of 8 layers each: the
// recorded gradient keeps no block's graph (the plain recorded gradient keeps all of them),
// and differentiating it rebuilds one block's graph at a time.
TEST(Checkpoint, RecordedGradientKeepsNoGraphOfFn) {
  Tensor x = random({64, 64}, 15).requires_grad_();
  const size_t map = 64 * 64 * sizeof(double);
  auto measure = [&](bool checkpointed, size_t& held, size_t& peak) {
    CpuMemoryLog bytes;
    Tensor y = x;
    for (int b = 0; b < 4; ++b) y = checkpointed ? checkpoint(chain, {y}, {}) : chain({y});
    Tensor g = grad({sum(square(y))}, {x}, {}, true, true)[0];
    held = bytes.now();
    Tensor second = grad({sum(square(g))}, {x})[0];
    peak = bytes.peak();
  };
  size_t plain_held = 0, plain_peak = 0, held = 0, peak = 0;
  measure(false, plain_held, plain_peak);
  measure(true, held, peak);
  // Measured: plain 99 maps held, 103 at the peak; checkpointed 11 held (each block's input
  // and grad_out), 40 at the peak (one block's forward, recorded backward and second order).
  EXPECT_GE(plain_held, 64 * map);
  EXPECT_LE(held, 16 * map);
  EXPECT_GE(plain_peak, 64 * map);
  EXPECT_LE(peak, 48 * map);
}

}  // namespace
}  // namespace fpa::test
