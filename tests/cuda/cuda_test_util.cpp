// cuda_test_util.cpp: the CUDA suite's buffers, comparisons and case runner, and its global
// set-up: TF32 off for the whole suite (parity with the CPU), the GPU named in the log.
#include "tests/cuda/cuda_test_util.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "autograd/philox.h"

namespace fpa::test::cuda {
namespace {

class CudaSuiteEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!has_backend(Device::cuda)) {
      std::printf("[ CUDA     ] no usable GPU: every CUDA test is skipped\n");
      return;
    }
    set_cuda_tf32(false);
    set_cuda_matmul_tf32(false);
    std::printf("[ CUDA     ] %s; TF32 off; %s cases\n", cuda_device_summary().c_str(),
                large_cases() ? "small and large" : "small (FPA_CUDA_TEST_SMALL=1)");
  }
};

[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new CudaSuiteEnvironment);

Buffers pair_of(const Tensor& host) { return {host, host.to(Device::cuda)}; }

std::string show(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

Buffers uniform(const Shape& shape, DType t, uint64_t seed, double lo, double hi) {
  Philox gen(seed);
  return pair_of(rand(shape, t, Device::cpu, &gen, lo, hi));
}

Buffers filled(const Shape& shape, DType t, double value) { return pair_of(full(shape, value, t, Device::cpu)); }

Buffers from_values(const std::vector<double>& values, const Shape& shape, DType t) {
  return pair_of(from_vector(values, shape, t, Device::cpu));
}

::testing::AssertionResult matches(const Tensor& gpu, const Tensor& cpu, Tolerance tol) {
  if (gpu.shape() != cpu.shape() || gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << "gpu " << gpu.str() << " vs cpu " << cpu.str();
  const std::vector<double> g = gpu.to_vector(), c = cpu.to_vector();
  double scale = 1;
  if (tol.scaled)
    for (double v : c)
      if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
  const double atol = tol.atol * scale;
  int64_t bad = 0, first = -1, worst = -1;
  double worst_excess = -1;
  for (size_t i = 0; i < c.size(); ++i) {
    const double a = g[i], b = c[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    double excess;
    if (std::isinf(a) || std::isinf(b) || std::isnan(a) || std::isnan(b)) excess = a == b ? -1 : INFINITY;
    else excess = std::abs(a - b) - (atol + tol.rtol * std::abs(b));
    if (excess <= 0) continue;
    ++bad;
    if (first < 0) first = int64_t(i);
    if (excess > worst_excess) worst_excess = excess, worst = int64_t(i);
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << c.size() << " elements of " << cpu.str() << " differ (atol "
                                       << atol << ", rtol " << tol.rtol << "); first [" << first << "] gpu "
                                       << show(g[first]) << " cpu " << show(c[first]) << "; worst [" << worst
                                       << "] gpu " << show(g[worst]) << " cpu " << show(c[worst]);
}

::testing::AssertionResult identical(const Tensor& gpu, const Tensor& cpu) {
  if (gpu.shape() != cpu.shape() || gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << "gpu " << gpu.str() << " vs cpu " << cpu.str();
  const std::vector<double> g = gpu.to_vector(), c = cpu.to_vector();  // exact for float32 too
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < c.size(); ++i) {
    if (std::isnan(g[i]) && std::isnan(c[i])) continue;
    if (std::memcmp(&g[i], &c[i], sizeof(double)) == 0) continue;
    if (first < 0) first = int64_t(i);
    ++bad;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << c.size() << " elements of " << cpu.str()
                                       << " are not bit-identical; first [" << first << "] gpu " << show(g[first])
                                       << " cpu " << show(c[first]);
}

void run_case(const std::string& label, const std::function<void()>& body) {
  SCOPED_TRACE(label);
  try {
    body();
    cuda_synchronize();
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw: " << e.what();
  }
}

bool large_cases() {
  const char* small = std::getenv("FPA_CUDA_TEST_SMALL");
  return !(small && *small && std::strcmp(small, "0") != 0);
}

const char* dtype_label(DType t) { return t == DType::f32 ? "f32" : "f64"; }

}  // namespace fpa::test::cuda
