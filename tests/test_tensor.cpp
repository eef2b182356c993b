// test_tensor.cpp: factories, dtype/device conversions, item(), the seeded generator's
// independence from thread count, the HostTrafficGuard, PendingRead (also on the queued
// stream stand-in), and the errors for misuse.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "autograd/philox.h"
#include "autograd/pending_read.h"
#include "ops/backend/backend.h"
#include "ops/ops.h"
#include "tests/stream_standin.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

TEST(Tensor, Factories) {
  EXPECT_EQ(zeros({2, 3}).to_vector(), std::vector<double>(6, 0.0));
  EXPECT_EQ(ones({4}, DType::f64).to_vector(), std::vector<double>(4, 1.0));
  EXPECT_EQ(full({2}, 2.5).to_vector(), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(arange(4).to_vector(), (std::vector<double>{0, 1, 2, 3}));
  Tensor t = from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.str(), "float64 (2, 3) cpu");
  EXPECT_DOUBLE_EQ(from_vector({7}, {1}).item(), 7.0);
}

TEST(Tensor, CastsRoundTrip) {
  Tensor d = from_vector({0.1, -2.5, 1e10}, {3}, DType::f64);
  Tensor f = d.to(DType::f32);
  EXPECT_EQ(f.dtype(), DType::f32);
  EXPECT_NEAR(f.to_vector()[0], 0.1, 1e-7);
  EXPECT_EQ(f.to_floats()[1], -2.5f);
  Tensor c = d.clone();
  EXPECT_NE(c.data(), d.data());
  EXPECT_EQ(c.to_vector(), d.to_vector());
}

TEST(Tensor, GeneratorIsSeededAndIndependentOfThreadCount) {
  Philox g1(123), g2(123), g3(124);
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<double> a = randn({50000}, DType::f32, Device::cpu, &g1).to_vector();
  omp_set_num_threads(std::max(2, threads));
  std::vector<double> b = randn({50000}, DType::f32, Device::cpu, &g2).to_vector();
  omp_set_num_threads(threads);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, randn({50000}, DType::f32, Device::cpu, &g3).to_vector());
  // Successive draws continue the stream instead of repeating it.
  EXPECT_NE(a, randn({50000}, DType::f32, Device::cpu, &g1).to_vector());
  EXPECT_EQ(g1.offset(), 100000u);
}

TEST(Tensor, RandomMomentsAreRight) {
  Philox g(7);
  std::vector<double> n = randn({200000}, DType::f64, Device::cpu, &g).to_vector();
  std::vector<double> u = rand({200000}, DType::f64, Device::cpu, &g, -1.0, 3.0).to_vector();
  double mn = 0, vn = 0, mu = 0, lo = 1e9, hi = -1e9;
  for (double x : n) mn += x, vn += x * x;
  for (double x : u) mu += x, lo = std::min(lo, x), hi = std::max(hi, x);
  mn /= n.size(), vn = vn / n.size() - mn * mn, mu /= u.size();
  EXPECT_NEAR(mn, 0.0, 0.01);
  EXPECT_NEAR(vn, 1.0, 0.01);
  EXPECT_NEAR(mu, 1.0, 0.02);
  EXPECT_GE(lo, -1.0);
  EXPECT_LT(hi, 3.0);
}

// Inside a HostTrafficGuard every host/device crossing and host-drawn random number throws,
// naming the call and the region; the guard nests, and outside it all works again.
TEST(Tensor, HostTrafficGuardRefusesHostCrossings) {
  Tensor x = ones({2});
  {
    HostTrafficGuard outer("the outer region");
    {
      HostTrafficGuard inner("a test region");
      EXPECT_ERROR(x.item(), "item inside a test region");
    }
    EXPECT_ERROR(x.to_vector(), "to_vector inside the outer region");
    EXPECT_ERROR(x.to_floats(), "to_floats inside the outer region");
    EXPECT_ERROR(from_vector({1.0}, {1}), "from_vector inside the outer region");
    EXPECT_ERROR(from_floats({1.0f}, {1}), "from_floats inside the outer region");
    EXPECT_ERROR(arange(3), "arange inside the outer region");
    EXPECT_ERROR(randn({2}), "randn inside the outer region");
    EXPECT_ERROR(rand({2}), "rand inside the outer region");
    Tensor y = add(x, x);  // device work is fine
    EXPECT_EQ(y.shape(), Shape({2}));
  }
  EXPECT_EQ(add(x, x).to_vector(), std::vector<double>({2.0, 2.0}));
}

TEST(Tensor, MisuseRaisesNamedErrors) {
  EXPECT_ERROR(zeros({2, 2}).item(), "item: tensor float32 (2, 2) cpu has 4 elements");
  EXPECT_ERROR(from_vector({1, 2, 3}, {2, 2}), "from_vector: 3 values for shape (2, 2)");
  EXPECT_ERROR(Tensor().shape(), "undefined tensor");
  if (!has_backend(Device::cuda))  // a machine without a usable GPU (or a CPU-only build)
    EXPECT_ERROR(zeros({2}, DType::f32, Device::cuda), "device cuda is not available");
}

// A read started before later work overwrites the tensor gives the values of its start, also
// where the work is queued (the stand-in stream); values() once; dropped unread without harm;
// refused inside a captured region.
TEST(Tensor, PendingReadGivesTheValuesOfItsStart) {
  StreamStandinAsCuda standin;
  for (Device d : {Device::cpu, Device::cuda}) {
    SCOPED_TRACE(device_name(d));
    Tensor t = from_vector({1, 2, 3}, {3}, DType::f32, d);
    PendingRead r(t), unread(t);
    EXPECT_TRUE(r.pending());
    backend(d).fill(DType::f32, 3, 7.0, t.data());
    if (d == Device::cuda) {
      EXPECT_GT(stream_standin_counts().queued, 0);
    }
    EXPECT_EQ(r.values(), (std::vector<double>{1, 2, 3}));
    EXPECT_FALSE(r.pending());
    EXPECT_ERROR(r.values(), "nothing to read");
    EXPECT_EQ(t.to_vector(), (std::vector<double>(3, 7.0)));
    HostTrafficGuard guard("a test region");
    EXPECT_ERROR(PendingRead{t}, "an asynchronous copy to the host inside a test region");
  }
}

}  // namespace
}  // namespace fpa::test
