// test_conformance.cpp: the backend conformance suite, `make test-backend DEVICE=cpu|cuda|stub`
// (MODE=compare,grad by default; MODE=time adds timings): every op case of the table
// (FPA_OP_CASE, tests/op_cases.h) run on one backend, as ggml's test-backend-ops does.
//   Conformance.EveryPrimitiveTheCasesUse  which primitives the cases call (found by running
//       them on the CPU's table, each entry recording its name) the backend lacks, all of them
//       by name in the order the cases first need them: the order to port them in;
//   ConformanceCompare/*       forward and gradients of each case on the backend against the
//       CPU, float64 and float32, each within the case's tolerance;
//   ConformanceGradients/*     first- and second-order gradient checks on the backend (float64,
//       central differences);
//   ConformanceTiming/*        (MODE=time) each case's forward + backward on the backend and
//       on the CPU, milliseconds, side by side.
// FPA_TEST_DEVICE names the device (stub: the stub backend registered as the cuda device), and
// FPA_TEST_MODE the modes; without FPA_TEST_DEVICE everything skips (make test stays fast).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "autograd/philox.h"
#include "ops/backend/backend.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"
#ifdef FPA_WITH_CUDA
#include "ops/backend/cuda/cuda_flags.h"
#endif

namespace fpa {
const Backend& cpu_backend();
}

namespace fpa::test {
namespace {

// The device under test (FPA_TEST_DEVICE), its backend set up once; nullopt: not asked for.
std::optional<Device> target() {
  static const std::optional<Device> device = []() -> std::optional<Device> {
    const char* env = std::getenv("FPA_TEST_DEVICE");
    if (!env || !*env) return std::nullopt;
    const std::string name = env;
    if (name == "stub") {
      register_backend(Device::cuda, &stub_backend());
      return Device::cuda;
    }
    for (int i = 0; i < kDeviceCount; ++i)
      if (name == kDeviceNames[i]) {
#ifdef FPA_WITH_CUDA
        if (static_cast<Device>(i) == Device::cuda) set_cuda_tf32(false);  // parity with the CPU
#endif
        return static_cast<Device>(i);
      }
    ADD_FAILURE() << "FPA_TEST_DEVICE=" << name << ": not cpu, cuda or stub";
    return std::nullopt;
  }();
  return device;
}

// Whether FPA_TEST_MODE (a comma-separated list; compare,grad when unset) has `mode`.
bool mode_on(const std::string& mode) {
  const char* env = std::getenv("FPA_TEST_MODE");
  const std::string modes = "," + std::string(env && *env ? env : "compare,grad") + ",";
  return modes.find("," + mode + ",") != std::string::npos || (mode != "time" && modes == ",all,");
}

#define REQUIRE_TARGET(mode)                                                                  \
  if (!target()) GTEST_SKIP() << "FPA_TEST_DEVICE is not set (make test-backend DEVICE=...)"; \
  if (!mode_on(mode)) GTEST_SKIP() << "FPA_TEST_MODE leaves out " << (mode)

// ---- which primitives a case calls: the CPU's table, each entry recording its name

std::vector<std::string>* g_recorded = nullptr;  // the names, in order of first call

void note(const char* name) {
  if (g_recorded && std::find(g_recorded->begin(), g_recorded->end(), name) == g_recorded->end())
    g_recorded->push_back(name);
}

const Backend& recording_backend() {
  static const Backend b = [] {
    Backend t = cpu_backend();
    t.name = "cpu (recording primitives)";
#define FPA_PRIMITIVE(fn, ret, params) \
  t.fn = [](auto... a) {               \
    note(#fn);                         \
    return cpu_backend().fn(a...);     \
  };
#include "ops/backend/primitives.def"
    return t;
  }();
  return b;
}

// The primitives the case's forward and backward (float64, on the CPU) call, in order.
std::vector<std::string> primitives_used(const OpCase& c) {
  std::vector<std::string> used;
  g_recorded = &used;
  register_backend(Device::cpu, &recording_backend());
  try {
    std::vector<Tensor> x = make_inputs(c, 1);
    Tensor y = c.fn(x);
    if (y.requires_grad()) grad({y}, x, {ones(y.shape(), DType::f64)}, false, false, true);
  } catch (...) {
    register_backend(Device::cpu, &cpu_backend());
    g_recorded = nullptr;
    throw;
  }
  register_backend(Device::cpu, &cpu_backend());
  g_recorded = nullptr;
  return used;
}

TEST(Conformance, EveryPrimitiveTheCasesUse) {
  REQUIRE_TARGET("compare");
  const Backend& b = backend(*target());
  std::vector<std::string> missing;  // in order of first need
  std::map<std::string, std::vector<std::string>> needed_by;
  for (const OpCase& c : op_cases())
    for (const std::string& p : primitives_used(c)) {
      if (b.supports(p.c_str())) continue;
      if (needed_by[p].empty()) missing.push_back(p);
      needed_by[p].push_back(c.label);
    }
  std::string report;
  for (const std::string& p : missing)
    report += fmt::format("\n  {:<26} needed by {} case(s), first {}", p, needed_by[p].size(), needed_by[p].front());
  EXPECT_TRUE(missing.empty()) << b.name << " lacks " << missing.size()
                               << " primitive(s) the op cases use, in the order they are first needed:" << report;
  // The rest of the list, which no op case calls (capture, Adam, random numbers: their own
  // tests cover them), where the backend lacks them.
  std::string others;
  for (const char* p : primitive_names())
    if (!b.supports(p) && !needed_by.count(p)) others += std::string(others.empty() ? "" : ", ") + p;
  if (!others.empty()) fmt::print("[ MISSING  ] {} also lacks, of the primitives no op case calls: {}\n", b.name, others);
}

// ---- each case on the backend against the CPU

// Fresh leaves of the case's inputs (the same values on every device), in `t`, on `d`.
std::vector<Tensor> leaves(const OpCase& c, DType t, Device d) {
  std::vector<Tensor> xs;
  for (const Tensor& x : make_inputs(c, 1)) xs.push_back(from_vector(x.to_vector(), x.shape(), t, d).requires_grad_());
  return xs;
}

// The case's output and its inputs' gradients for a fixed upstream gradient (undefined for an
// input the output does not depend on), on the CPU's device or the target's.
std::vector<Tensor> output_and_gradients(const OpCase& c, DType t, Device d) {
  std::vector<Tensor> x = leaves(c, t, d);
  Tensor y = c.fn(x);
  std::vector<Tensor> r = {y};
  if (!y.requires_grad()) return r;
  Philox gen(29);
  Tensor u = randn(y.shape(), t, Device::cpu, &gen).to(d);
  for (const Tensor& g : grad({y}, x, {u}, false, false, true)) r.push_back(g);
  return r;
}

class ConformanceCompare : public ::testing::TestWithParam<size_t> {};

TEST_P(ConformanceCompare, MatchesTheCpu) {
  REQUIRE_TARGET("compare");
  const OpCase& c = op_cases()[GetParam()];
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    const double tol = t == DType::f64 ? 1e-9 : c.f32_tol;
    std::vector<Tensor> ref = output_and_gradients(c, t, Device::cpu), got = output_and_gradients(c, t, *target());
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      const std::string what = i == 0 ? "the output" : fmt::format("the gradient of input {}", i - 1);
      ASSERT_EQ(got[i].defined(), ref[i].defined()) << what;
      if (!ref[i].defined()) continue;
      EXPECT_EQ(got[i].device(), *target()) << what;
      CheckResult r = allclose_scaled(got[i], ref[i], tol, tol);
      EXPECT_TRUE(r.ok) << what << ": " << r.message;
    }
  }
}

class ConformanceGradients : public ::testing::TestWithParam<size_t> {};

TEST_P(ConformanceGradients, FirstAndSecondOrder) {
  REQUIRE_TARGET("grad");
  const OpCase& c = op_cases()[GetParam()];
  const std::vector<Tensor> x = make_inputs(c, 1, *target());
  CheckResult first = gradcheck(c.fn, x);
  EXPECT_TRUE(first.ok) << "first order: " << first.message;
  if (!c.second_order) return;
  CheckResult second = gradgradcheck(c.fn, x);
  EXPECT_TRUE(second.ok) << "second order: " << second.message;
}

class ConformanceTiming : public ::testing::TestWithParam<size_t> {};

// Milliseconds per forward + backward in float32 on d, the best of a few runs (the first
// excluded: it sets up caches and plans).
double milliseconds(const OpCase& c, Device d) {
  double best = 1e30;
  for (int run = 0; run < 4; ++run) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<Tensor> r = output_and_gradients(c, DType::f32, d);
    r.back().to_vector();  // waits for the device
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (run > 0) best = std::min(best, ms);
  }
  return best;
}

TEST_P(ConformanceTiming, AgainstTheCpu) {
  REQUIRE_TARGET("time");
  const OpCase& c = op_cases()[GetParam()];
  const double on_target = milliseconds(c, *target()), on_cpu = milliseconds(c, Device::cpu);
  fmt::print("[ TIME     ] {:<40} {:>9.3f} ms on {}, {:>9.3f} ms on the CPU ({:.2f}x)\n", c.label, on_target,
             device_name(*target()), on_cpu, on_cpu / on_target);
}

std::string case_label(const ::testing::TestParamInfo<size_t>& info) { return op_cases()[info.param].label; }

INSTANTIATE_TEST_SUITE_P(Ops, ConformanceCompare, ::testing::Range(size_t(0), op_cases().size()), case_label);
INSTANTIATE_TEST_SUITE_P(Ops, ConformanceGradients, ::testing::Range(size_t(0), op_cases().size()), case_label);
INSTANTIATE_TEST_SUITE_P(Ops, ConformanceTiming, ::testing::Range(size_t(0), op_cases().size()), case_label);

}  // namespace
}  // namespace fpa::test
