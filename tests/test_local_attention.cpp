// test_local_attention.cpp: the fused local attention (ops/local_attention.cpp) against a
// direct float64 loop and against its composed twin (values, first-order gradients, and the
// composed fallback that the gradient penalty's second order goes through), float32 against
// float64, independence from the thread count, errors. Its op cases:
// tests/op_cases/local_attention_cases.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/philox.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

Tensor random(const Shape& s, uint64_t seed, double scale = 1.0) {
  Philox gen(seed);
  return mul_scalar(randn(s, DType::f64, Device::cpu, &gen), scale);
}

// out[p, c, y, x] by definition: softmax over the k*k neighbours (zero similarity and value
// outside the map, as unfold's zero padding gives).
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel) {
  const Shape& s = q.shape();
  const int64_t P = s[0], d = s[1], H = s[2], W = s[3], r = kernel / 2;
  std::vector<double> Q = q.to_vector(), K = k.to_vector(), Vv = v.to_vector(), out(Q.size());
  auto at = [&](int64_t p, int64_t c, int64_t y, int64_t x) { return ((p * d + c) * H + y) * W + x; };
  for (int64_t p = 0; p < P; ++p)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        std::vector<double> sim;
        std::vector<std::pair<int64_t, int64_t>> where;
        for (int64_t dy = -r; dy <= r; ++dy)
          for (int64_t dx = -r; dx <= r; ++dx) {
            const int64_t yy = y + dy, xx = x + dx;
            const bool inside = yy >= 0 && yy < H && xx >= 0 && xx < W;
            double dotp = 0;
            for (int64_t c = 0; c < d && inside; ++c) dotp += Q[at(p, c, y, x)] * K[at(p, c, yy, xx)];
            sim.push_back(dotp);
            where.push_back(inside ? std::make_pair(yy, xx) : std::make_pair(int64_t(-1), int64_t(-1)));
          }
        double mx = sim[0], total = 0;
        for (double e : sim) mx = std::max(mx, e);
        for (double& e : sim) total += (e = std::exp(e - mx));
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (size_t j = 0; j < sim.size(); ++j)
            if (where[j].first >= 0) acc += sim[j] / total * Vv[at(p, c, where[j].first, where[j].second)];
          out[at(p, c, y, x)] = acc;
        }
      }
  return from_vector(out, s, DType::f64);
}

struct Case {
  Shape shape;
  int64_t kernel;
  double scale;  // of q and k: larger means a peakier softmax
};
const std::vector<Case> kCases = {
    {{2, 3, 4, 5}, 3, 1.0}, {{3, 8, 7, 6}, 3, 2.0}, {{1, 4, 1, 9}, 3, 1.0},
    {{2, 2, 2, 2}, 5, 1.5}, {{4, 16, 16, 16}, 3, 0.7}, {{1, 1, 1, 1}, 3, 1.0},
};

TEST(LocalAttention, ForwardMatchesDefinition) {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.shape.str() + " kernel " + std::to_string(c.kernel));
    Tensor q = random(c.shape, seed++, c.scale), k = random(c.shape, seed++, c.scale), v = random(c.shape, seed++);
    Tensor ref = reference(q, k, v, c.kernel);
    EXPECT_CLOSE_TOL(local_attention(q, k, v, c.kernel), ref, 1e-13, 1e-12);
    EXPECT_CLOSE_TOL(local_attention_composed(q, k, v, c.kernel), ref, 1e-13, 1e-12);
  }
}

TEST(LocalAttention, FusedGradientsMatchComposedTwin) {
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.shape.str() + " kernel " + std::to_string(c.kernel));
    Tensor q = random(c.shape, seed++, c.scale).requires_grad_(), k = random(c.shape, seed++, c.scale).requires_grad_(),
           v = random(c.shape, seed++).requires_grad_();
    Tensor gy = random(c.shape, seed++);
    std::vector<Tensor> fused = grad({local_attention(q, k, v, c.kernel)}, {q, k, v}, {gy});
    std::vector<Tensor> composed = grad({local_attention_composed(q, k, v, c.kernel)}, {q, k, v}, {gy});
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE("input " + std::to_string(i));
      EXPECT_CLOSE_TOL(fused[i], composed[i], 1e-12, 1e-10);
    }
  }
}

// With create_graph the backward is the composed formula: the second-order gradients of a
// penalty-like scalar match those of the composed twin.
TEST(LocalAttention, SecondOrderMatchesComposedTwin) {
  const Shape s = {2, 4, 5, 6};
  Tensor q = random(s, 7, 1.5).requires_grad_(), k = random(s, 8, 1.5).requires_grad_(),
         v = random(s, 9).requires_grad_(), w = random(s, 10);
  auto second = [&](bool fused) {
    Tensor out = fused ? local_attention(q, k, v, 3) : local_attention_composed(q, k, v, 3);
    std::vector<Tensor> g1 = grad({sum(mul(out, w))}, {q, k, v}, {}, true, true);
    Tensor penalty = add(add(sum(square(g1[0])), sum(square(g1[1]))), sum(square(g1[2])));
    return grad({penalty}, {q, k, v}, {}, false, false, true);
  };
  std::vector<Tensor> a = second(true), b = second(false);
  ASSERT_TRUE(b[0].defined() && b[1].defined());
  for (int i = 0; i < 3; ++i) {
    if (!b[i].defined()) {
      EXPECT_FALSE(a[i].defined()) << "input " << i;
      continue;
    }
    ASSERT_TRUE(a[i].defined()) << "input " << i;
    SCOPED_TRACE("input " + std::to_string(i));
    EXPECT_CLOSE_TOL(a[i], b[i], 1e-12, 1e-10);
  }
}

TEST(LocalAttention, Float32MatchesFloat64) {
  const Shape s = {4, 16, 16, 16};
  Tensor q = random(s, 21, 0.7), k = random(s, 22, 0.7), v = random(s, 23), gy = random(s, 24);
  auto run = [&](DType t) {
    Tensor q_ = q.to(t).requires_grad_(), k_ = k.to(t).requires_grad_(), v_ = v.to(t).requires_grad_();
    Tensor out = local_attention(q_, k_, v_, 3);
    std::vector<Tensor> g = grad({out}, {q_, k_, v_}, {gy.to(t)});
    return std::vector<Tensor>{out, g[0], g[1], g[2]};
  };
  std::vector<Tensor> r64 = run(DType::f64), r32 = run(DType::f32);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE("tensor " + std::to_string(i));
    EXPECT_CLOSE_SCALED(r32[i].to(DType::f64), r64[i], 1e-5, 1e-4);
  }
}

TEST(LocalAttention, SameBitsForAnyThreadCount) {
  const Shape s = {8, 16, 16, 16};
  Tensor q = random(s, 31).to(DType::f32).requires_grad_(), k = random(s, 32).to(DType::f32).requires_grad_(),
         v = random(s, 33).to(DType::f32).requires_grad_(), gy = random(s, 34).to(DType::f32);
  auto run = [&] {
    Tensor out = local_attention(q, k, v, 3);
    std::vector<Tensor> g = grad({out}, {q, k, v}, {gy});
    return std::vector<Tensor>{out, g[0], g[1], g[2]};
  };
  std::vector<Tensor> one = with_threads(1, run), two = with_threads(2, run);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(same_bits(one[i], two[i])) << "tensor " << i;
}

TEST(LocalAttention, ClearErrors) {
  Tensor a = zeros({1, 2, 3, 3}), b = zeros({1, 2, 3, 4});
  EXPECT_ERROR(local_attention(a, a, a, 2), "kernel must be odd");
  EXPECT_ERROR(local_attention(a, b, a, 3), "must have one shape");
  EXPECT_ERROR(local_attention(zeros({2, 3, 3}), zeros({2, 3, 3}), zeros({2, 3, 3}), 3), "(P, d, H, W)");
  EXPECT_ERROR(local_attention(a, a.to(DType::f64), a, 3), "local_attention");
}

}  // namespace
}  // namespace fpa::test
