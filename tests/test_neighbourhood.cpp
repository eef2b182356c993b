// test_neighbourhood.cpp: the neighbourhood ops (ops/neighbourhood.cpp) against direct float64
// loops, kernels 1, 3 and 5 on maps narrower than the kernel; the transpose identity they rest
// on (sum_j w[j, m - off_j] x[m - off_j] = neighbour_sum(transpose(w), x)) and the transpose's
// self-adjointness; errors; and that a second-order gradient through local attention keeps no
// unfolded (J times larger) map alive. Their op cases: tests/op_cases/neighbourhood_cases.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/philox.h"
#include "tests/cpu_memory_log.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

Tensor random(const Shape& s, uint64_t seed) {
  Philox gen(seed);
  return randn(s, DType::f64, Device::cpu, &gen);
}

struct Geometry {
  int64_t P, d, H, W, kernel;
};

// Neighbour j of (y, x), as unfold orders them; false outside the map.
bool neighbour(const Geometry& g, int64_t j, int64_t y, int64_t x, int64_t& ny, int64_t& nx) {
  const int64_t r = g.kernel / 2;
  ny = y + j / g.kernel - r, nx = x + j % g.kernel - r;
  return ny >= 0 && ny < g.H && nx >= 0 && nx < g.W;
}

// The three ops by definition, on flat float64 vectors.
std::vector<double> dot_loop(const Geometry& g, const std::vector<double>& a, const std::vector<double>& b) {
  const int64_t J = g.kernel * g.kernel, N = g.H * g.W;
  std::vector<double> out(g.P * J * N, 0.0);
  for (int64_t p = 0; p < g.P; ++p)
    for (int64_t j = 0; j < J; ++j)
      for (int64_t y = 0; y < g.H; ++y)
        for (int64_t x = 0; x < g.W; ++x) {
          int64_t ny, nx;
          if (!neighbour(g, j, y, x, ny, nx)) continue;
          double acc = 0;
          for (int64_t c = 0; c < g.d; ++c)
            acc += a[(p * g.d + c) * N + y * g.W + x] * b[(p * g.d + c) * N + ny * g.W + nx];
          out[(p * J + j) * N + y * g.W + x] = acc;
        }
  return out;
}

std::vector<double> sum_loop(const Geometry& g, const std::vector<double>& w, const std::vector<double>& xs) {
  const int64_t J = g.kernel * g.kernel, N = g.H * g.W;
  std::vector<double> out(g.P * g.d * N, 0.0);
  for (int64_t p = 0; p < g.P; ++p)
    for (int64_t c = 0; c < g.d; ++c)
      for (int64_t y = 0; y < g.H; ++y)
        for (int64_t x = 0; x < g.W; ++x)
          for (int64_t j = 0; j < J; ++j) {
            int64_t ny, nx;
            if (neighbour(g, j, y, x, ny, nx))
              out[(p * g.d + c) * N + y * g.W + x] +=
                  w[(p * J + j) * N + y * g.W + x] * xs[(p * g.d + c) * N + ny * g.W + nx];
          }
  return out;
}

// sum_j w[j, m - off_j] x[c, m - off_j]: every position n that reads m as its neighbour j.
std::vector<double> readers_loop(const Geometry& g, const std::vector<double>& w, const std::vector<double>& xs) {
  const int64_t J = g.kernel * g.kernel, N = g.H * g.W;
  std::vector<double> out(g.P * g.d * N, 0.0);
  for (int64_t p = 0; p < g.P; ++p)
    for (int64_t c = 0; c < g.d; ++c)
      for (int64_t y = 0; y < g.H; ++y)
        for (int64_t x = 0; x < g.W; ++x)
          for (int64_t j = 0; j < J; ++j) {
            int64_t my, mx;
            if (neighbour(g, j, y, x, my, mx))  // n = (y, x) reads m = (my, mx)
              out[(p * g.d + c) * N + my * g.W + mx] +=
                  w[(p * J + j) * N + y * g.W + x] * xs[(p * g.d + c) * N + y * g.W + x];
          }
  return out;
}

const std::vector<Geometry> kGeometries = {{2, 3, 4, 5, 3}, {1, 2, 3, 2, 5}, {3, 4, 2, 6, 1}, {1, 5, 7, 7, 3}};

void expect_equal_vectors(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  EXPECT_LE(worst, 1e-12) << what;
}

TEST(Neighbourhood, OpsMatchTheirDefinitions) {
  for (const Geometry& g : kGeometries) {
    const std::string at = "P " + std::to_string(g.P) + " d " + std::to_string(g.d) + " " + std::to_string(g.H) +
                           "x" + std::to_string(g.W) + " kernel " + std::to_string(g.kernel);
    const int64_t J = g.kernel * g.kernel;
    Tensor a = random({g.P, g.d, g.H, g.W}, 1), b = random({g.P, g.d, g.H, g.W}, 2);
    Tensor w = random({g.P, J, g.H, g.W}, 3);
    expect_equal_vectors(neighbour_dot(a, b, g.kernel).to_vector(), dot_loop(g, a.to_vector(), b.to_vector()),
                         "neighbour_dot " + at);
    expect_equal_vectors(neighbour_sum(w, b, g.kernel).to_vector(), sum_loop(g, w.to_vector(), b.to_vector()),
                         "neighbour_sum " + at);
    expect_equal_vectors(neighbour_sum(neighbour_transpose(w, g.kernel), b, g.kernel).to_vector(),
                         readers_loop(g, w.to_vector(), b.to_vector()), "transpose identity " + at);
    // <transpose(w), u> = <w, transpose(u)>
    Tensor u = random({g.P, J, g.H, g.W}, 4);
    const double left = sum(mul(neighbour_transpose(w, g.kernel), u)).item();
    const double right = sum(mul(w, neighbour_transpose(u, g.kernel))).item();
    EXPECT_NEAR(left, right, 1e-12) << "transpose is self-adjoint " << at;
    // float32 follows float64
    Tensor a32 = a.to(DType::f32), b32 = b.to(DType::f32);
    EXPECT_CLOSE_SCALED(neighbour_dot(a32, b32, g.kernel).to(DType::f64),
                        neighbour_dot(a32.to(DType::f64), b32.to(DType::f64), g.kernel), 1e-6, 0);
  }
}

TEST(Neighbourhood, RejectsBadArguments) {
  Tensor a = zeros({2, 3, 4, 4}), w = zeros({2, 9, 4, 4});
  EXPECT_ERROR(neighbour_dot(a, a, 2), "kernel must be odd");
  EXPECT_ERROR(neighbour_dot(a, zeros({2, 3, 4, 5}), 3), "must have one shape");
  EXPECT_ERROR(neighbour_dot(zeros({3, 4, 4}), zeros({3, 4, 4}), 3), "(P, d, H, W)");
  EXPECT_ERROR(neighbour_sum(zeros({2, 4, 4, 4}), a, 3), "weights must be (2, 9, 4, 4)");
  EXPECT_ERROR(neighbour_sum(w, a.to(DType::f64), 3), "neighbour_sum");
  EXPECT_ERROR(neighbour_transpose(w, 5), "weights must be (2, 25, 4, 4)");
}

// The penalty's second order through local attention: the recorded graph keeps a handful of
// maps and (P, J, H, W) weights, never the unfolded keys and values (each J maps large).
TEST(Neighbourhood, SecondOrderThroughLocalAttentionKeepsNoUnfoldedMaps) {
  const int64_t P = 4, d = 16, H = 12, W = 12, J = 9;
  Tensor q = random({P, d, H, W}, 5).requires_grad_(), k = random({P, d, H, W}, 6).requires_grad_();
  Tensor v = random({P, d, H, W}, 7).requires_grad_();
  const size_t map_bytes = size_t(P * d * H * W) * sizeof(double);
  size_t peak = 0;
  {
    CpuMemoryLog bytes;
    Tensor out = local_attention(q, k, v, 3);
    Tensor gq = grad({sum(square(out))}, {q}, {}, true, true)[0];
    backward(sum(square(gq)));
    peak = bytes.peak();
  }
  ASSERT_TRUE(q.grad().defined() && k.grad().defined() && v.grad().defined());
  EXPECT_LT(peak, 20 * map_bytes) << "an unfolded map alone is " << J << " maps";
}

}  // namespace
}  // namespace fpa::test
