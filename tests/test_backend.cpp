// test_backend.cpp: the backend table itself: every primitive of the stub fails with
// "unimplemented: NAME", the CPU backend reports what it supports (and no unknown name), every
// device has a name and a registry slot (and a reason where it has no backend), the properties
// the layers above ask for, and primitives that
// ops do not reach directly (adam_step, also from bias terms in memory, cast) compute the
// right numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <type_traits>

#include "autograd/philox.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

// Calls f with a value-initialised argument of each parameter type (zeros, nullptrs).
template <typename R, typename... P>
void call_with_zeros(R (*f)(P...)) {
  f(std::decay_t<P>{}...);
}

// Every primitive of ops/backend/primitives.def is an entry of the stub that throws naming it.
TEST(Backend, StubFailsWithTheEntryName) {
  const Backend& b = stub_backend();
  for (const char* name : primitive_names()) EXPECT_FALSE(b.supports(name)) << name;
#define FPA_PRIMITIVE(fn, ret, params) EXPECT_ERROR(call_with_zeros(b.fn), "unimplemented: " #fn " (stub backend)");
#include "ops/backend/primitives.def"
}

TEST(Backend, CpuSupportsEverythingButCaptureAndNoUnknownName) {
  const Backend& b = backend(Device::cpu);
  EXPECT_STREQ(b.name, "cpu");
  EXPECT_EQ(std::set<std::string>(primitive_names().begin(), primitive_names().end()).size(), primitive_names().size())
      << "a primitive is listed twice";
  for (const char* name : primitive_names()) {
    const bool capture = std::string(name).rfind("capture", 0) == 0 || std::string(name).rfind("graph", 0) == 0;
    EXPECT_EQ(b.supports(name), !capture) << name;
  }
  EXPECT_FALSE(b.supports("no_such_primitive"));
  EXPECT_FALSE(b.supports(""));
  EXPECT_ERROR(b.capture_begin(nullptr), "capture_begin: the CPU backend runs eagerly");
}

// Each device of autograd/dtype.h's list has its name and its slot in the registry.
TEST(Backend, EveryDeviceHasANameAndARegistrySlot) {
  EXPECT_EQ(kDeviceCount, 2);
  EXPECT_STREQ(device_name(Device::cpu), "cpu");
  EXPECT_STREQ(device_name(Device::cuda), "cuda");
  EXPECT_STREQ(device_name(static_cast<Device>(kDeviceCount)), "an unknown device");
  EXPECT_ERROR(has_backend(static_cast<Device>(kDeviceCount)), "device number 2 is not in autograd/dtype.h's list");
  for (int i = 0; i < kDeviceCount; ++i) {
    const Device d = static_cast<Device>(i);
    const Backend* before = has_backend(d) ? &backend(d) : nullptr;
    register_backend(d, &stub_backend());
    EXPECT_STREQ(backend(d).name, "stub") << device_name(d);
    register_backend(d, before);
  }
}

// Devices are named from autograd/dtype.h's list; one without a backend says why.
TEST(Backend, DevicesByNameAndWhyOneHasNoBackend) {
  EXPECT_EQ(device_named("cpu", "--device"), Device::cpu);
  EXPECT_EQ(device_named("cuda", "--device"), Device::cuda);
  EXPECT_ERROR(device_named("tpu", "--device"), "--device must be cpu or cuda, got 'tpu'");
  EXPECT_EQ(missing_backend_reason(Device::cpu), "");
  const Backend* before = has_backend(Device::cuda) ? &backend(Device::cuda) : nullptr;
  register_backend(Device::cuda, nullptr);
  EXPECT_NE(missing_backend_reason(Device::cuda), "");
  EXPECT_ERROR(backend(Device::cuda), "device cuda is not available: " + missing_backend_reason(Device::cuda));
  register_backend(Device::cuda, before);
}

// The properties the layers above ask for instead of testing the device: the CPU runs work as
// it is called, keeps no statistics, has no reduced precision and is not memory-bound; the
// stub describes nothing.
TEST(Backend, CpuAndStubProperties) {
  const Backend& cpu = backend(Device::cpu);
  EXPECT_FALSE(cpu.memory_bound);
  ASSERT_NE(cpu.summary, nullptr);
  EXPECT_NE(cpu.summary().find("GEMM: "), std::string::npos) << cpu.summary();
  EXPECT_EQ(cpu.synchronize, nullptr);
  EXPECT_EQ(cpu.memory_stats, nullptr);
  EXPECT_EQ(cpu.reset_peak_memory, nullptr);
  EXPECT_EQ(cpu.set_strict_float32, nullptr);
  const Backend& stub = stub_backend();
  EXPECT_FALSE(stub.memory_bound);
  EXPECT_EQ(stub.summary, nullptr);
  EXPECT_EQ(stub.memory_stats, nullptr);
}

// free ignores nullptr and reports (never throws, never crashes on) a pointer it did not hand out.
TEST(Backend, CpuFreeIgnoresNullAndUnknownPointers) {
  const Backend& b = backend(Device::cpu);
  b.free(nullptr);
  int not_ours = 0;
  testing::internal::CaptureStderr();
  b.free(&not_ours);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("did not hand out"), std::string::npos);
}

// The bias-corrected terms read from memory (what a captured Adam step does) give the bits of
// the terms computed from the step count, in both dtypes, over several steps.
TEST(Backend, AdamStepFromBiasTermsInMemoryIsTheSameStep) {
  for (DType t : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(t));
    Philox gen(5);
    const int64_t n = 1000;
    Tensor g = randn({n}, t, Device::cpu, &gen);
    Tensor p1 = randn({n}, t, Device::cpu, &gen), m1 = zeros({n}, t), v1 = zeros({n}, t);
    Tensor p2 = p1.clone(), m2 = zeros({n}, t), v2 = zeros({n}, t);
    for (int64_t step = 1; step <= 5; ++step) {
      AdamArgs by_count{2e-4, 0.5, 0.9, 1e-8, 0.01, step};
      double step_size, bc2_sqrt;
      adam_bias_terms(2e-4, 0.5, 0.9, step, &step_size, &bc2_sqrt);
      Tensor terms = from_vector({step_size, bc2_sqrt}, {2}, t);
      AdamArgs from_memory{2e-4, 0.5, 0.9, 1e-8, 0.01, /*step ignored*/ 0, terms.data()};
      backend(Device::cpu).adam_step(t, n, by_count, p1.data(), g.data(), m1.data(), v1.data());
      backend(Device::cpu).adam_step(t, n, from_memory, p2.data(), g.data(), m2.data(), v2.data());
    }
    EXPECT_TRUE(same_bits(p1, p2));
    EXPECT_TRUE(same_bits(v1, v2));
  }
}

TEST(Backend, AdamStepMatchesTorchFormula) {
  // torch.optim.Adam, one parameter, two steps, by hand.
  double p = 1.0, m = 0, v = 0, lr = 0.1, b1 = 0.5, b2 = 0.9, eps = 1e-8;
  Tensor P = from_vector({p}, {1}, DType::f64), M = zeros({1}, DType::f64), Vt = zeros({1}, DType::f64);
  for (int step = 1; step <= 2; ++step) {
    double g = 0.3 * step;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    double mhat = m / (1 - std::pow(b1, step)), vhat = v / (1 - std::pow(b2, step));
    p -= lr * mhat / (std::sqrt(vhat) + eps);
    Tensor G = from_vector({g}, {1}, DType::f64);
    backend(Device::cpu).adam_step(DType::f64, 1, AdamArgs{lr, b1, b2, eps, 0.0, step}, P.data(), G.data(),
                                   M.data(), Vt.data());
  }
  EXPECT_NEAR(P.item(), p, 1e-12);
}

}  // namespace
}  // namespace fpa::test
