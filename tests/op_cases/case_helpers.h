// case_helpers.h: the helpers that an op case (tests/op_cases/*_cases.cpp) and the TESTs of its
// family's test file both use, written once: the checkpoint tests' block (checkpoint_cases.cpp,
// tests/test_checkpoint.cpp) and the painting front end (paint_fused_cases.cpp,
// tests/test_paint_fused.cpp).
#pragma once
#include "ops/ops.h"

namespace fpa::test {

// A small block that reads a "parameter" w besides its input: tanh(x w) * x, summed rows.
inline Tensor block(const Tensor& x, const Tensor& w) { return mul(tanh(matmul(x, w)), x); }

// The painting op's front end (key softmax and rate sigmoid) all on or all off.
inline PaintFrontEnd front_end(bool on) {
  PaintFrontEnd fe;
  fe.key_softmax = fe.rate_sigmoid = on;
  return fe;
}

}  // namespace fpa::test
