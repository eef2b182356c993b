// cuda_test_util.h: helpers of the CUDA test suite (make test-cuda), which runs every primitive
// of the CUDA backend on the same inputs as its CPU twin and compares the results.
//
// A `Buffers` holds one array twice, on the host (the CPU backend's input or output) and on the
// GPU, with equal contents; `on_both` calls a primitive once per backend with the pointers of
// its device. Outputs start as NaN on both sides, so an entry that fails to overwrite every
// element is caught. `expect_match` compares the GPU result with the CPU one (NaN equals NaN,
// infinities must agree) and names the case, the number of mismatches, and the first and worst
// one. `run_case` runs one case, waits for the GPU so a fault is blamed on that case, and turns
// an exception into a failure of that case alone, so one run lists every failing case.
// Every test starts with REQUIRE_CUDA(): without a usable GPU the suite skips, never fails.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ops/backend/backend.h"
#include "ops/backend/cuda/cuda_flags.h"
#include "ops/ops.h"

#define REQUIRE_CUDA()                                                                       \
  do {                                                                                       \
    if (!::fpa::has_backend(::fpa::Device::cuda)) GTEST_SKIP() << "no usable CUDA GPU here"; \
  } while (0)

namespace fpa::test::cuda {

// One array on the host and on the GPU.
struct Buffers {
  Tensor host, device;
  void* on(Device d) const { return (d == Device::cpu ? host : device).data(); }
  const Shape& shape() const { return host.shape(); }
  int64_t numel() const { return host.numel(); }
};

// Uniform in [lo, hi), reproducible from `seed`.
Buffers uniform(const Shape& shape, DType t, uint64_t seed, double lo = -1.0, double hi = 1.0);
// Every element `value` (NaN by default: outputs that must be overwritten).
Buffers filled(const Shape& shape, DType t, double value = std::numeric_limits<double>::quiet_NaN());
Buffers from_values(const std::vector<double>& values, const Shape& shape, DType t);

// Calls f(Device::cpu) then f(Device::cuda).
template <typename F>
void on_both(F&& f) {
  f(Device::cpu);
  f(Device::cuda);
}

// |gpu - cpu| <= atol + rtol |cpu| elementwise; with `scaled`, atol is multiplied by
// max(1, max |cpu|) (for long sums, whose rounding follows the size of their terms).
struct Tolerance {
  double atol = 0, rtol = 0;
  bool scaled = false;
};
constexpr Tolerance kExact{0, 0, false};

::testing::AssertionResult matches(const Tensor& gpu, const Tensor& cpu, Tolerance tol);
// The device copy of `b` against its host copy.
#define EXPECT_MATCH(buffers, ...) \
  EXPECT_TRUE(::fpa::test::cuda::matches((buffers).device, (buffers).host, (__VA_ARGS__)))

// Bit-for-bit equality (-0 and +0 differ, NaN payloads are ignored).
::testing::AssertionResult identical(const Tensor& gpu, const Tensor& cpu);
#define EXPECT_IDENTICAL(buffers) EXPECT_TRUE(::fpa::test::cuda::identical((buffers).device, (buffers).host))

// Runs one case: SCOPED_TRACE(label), body, cuda_synchronize(); an exception fails the case.
void run_case(const std::string& label, const std::function<void()>& body);

// False when FPA_CUDA_TEST_SMALL=1 (the compute-sanitizer run): large cases are left out.
bool large_cases();

const char* dtype_label(DType t);
inline const DType kDtypes[] = {DType::f32, DType::f64};

}  // namespace fpa::test::cuda
