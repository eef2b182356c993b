// op_cases.h: the table of op test cases that tests/test_gradcheck.cpp runs through
// gradcheck (first order) and gradgradcheck (second order) in float64, and the helpers for
// forward-reference tests. The cases are in tests/op_cases/<family>_cases.cpp (FPA_OP_CASE), so
// the CUDA suite and the conformance suite (tests/test_conformance.cpp) link them too.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "ops/registry.h"

namespace fpa::test {

// A case's fn makes any tensor of its own in its inputs' dtype and on their device, so that
// the conformance suite can run it in float32 and on any backend.
struct OpCase {
  std::string op;     // the registry name this case covers
  std::string label;  // unique, used as the test name (letters, digits, underscores)
  std::vector<Shape> shapes;  // one per differentiable input
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  double lo = -1.0, hi = 1.0;  // inputs drawn uniformly in [lo, hi) ...
  double min_abs = 0.0;        // ... then pushed to |x| >= min_abs (to avoid kinks at 0)
  bool second_order = true;
  // The conformance suite's float32 tolerance against the CPU, relative to the largest value of
  // the CPU's result (tests/test_conformance.cpp).
  double f32_tol = 1e-4;
};

int add_op_case(const OpCase& c);
const std::vector<OpCase>& op_cases();

// Random float64 inputs for a case on `device`, reproducible from `seed` (the same values on every device).
std::vector<Tensor> make_inputs(const OpCase& c, uint64_t seed, Device device = Device::cpu);

struct CheckResult {
  bool ok = true;
  std::string message;  // the worst element: index, analytic, numeric
};
// Central differences (eps 1e-6) against the engine, atol 1e-5, rtol 1e-3, random upstream
// grad; on the inputs' device.
CheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                      const std::vector<Tensor>& inputs, uint64_t seed = 1);
// gradcheck of (inputs, upstream) -> grad(fn(inputs), inputs, upstream, create_graph=true).
CheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, uint64_t seed = 1);

// max |a - b| <= atol + rtol |b| elementwise; message names the worst index otherwise.
CheckResult allclose(const Tensor& a, const Tensor& b, double atol = 1e-10, double rtol = 1e-10);
// allclose with atol scaled by max(1, max|b|): for float32 gradients, whose elements are long
// sums with rounding error that follows the size of the tensor's terms, not their own value.
CheckResult allclose_scaled(const Tensor& a, const Tensor& b, double atol, double rtol);
// max |a - b| <= tol * max|b| (tol itself when b is all zeros): a fused op against its twin.
CheckResult allclose_to_max(const Tensor& a, const Tensor& b, double tol);

}  // namespace fpa::test

#define FPA_OP_CASE(...) \
  static int FPA_CONCAT(fpa_op_case_, __LINE__) = ::fpa::test::add_op_case(::fpa::test::OpCase{__VA_ARGS__})
