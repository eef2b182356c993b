// test_util.h: assertion macros shared by the test files.
#pragma once
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <fstream>
#include <string>

#include "autograd/error.h"
#include "fpa/inception.h"
#include "tests/op_cases.h"

// Elementwise |a - b| <= atol + rtol |b|.
#define EXPECT_CLOSE_TOL(a, b, atol, rtol)                                     \
  do {                                                                         \
    ::fpa::test::CheckResult r_ = ::fpa::test::allclose((a), (b), atol, rtol); \
    EXPECT_TRUE(r_.ok) << #a << " vs " << #b << ": " << r_.message;            \
  } while (0)
#define EXPECT_CLOSE(a, b) EXPECT_CLOSE_TOL(a, b, 1e-12, 1e-12)

// Elementwise |a - b| <= atol max(1, max|b|) + rtol |b| (see allclose_scaled).
#define EXPECT_CLOSE_SCALED(a, b, atol, rtol)                                         \
  do {                                                                                \
    ::fpa::test::CheckResult r_ = ::fpa::test::allclose_scaled((a), (b), atol, rtol); \
    EXPECT_TRUE(r_.ok) << #a << " vs " << #b << ": " << r_.message;                   \
  } while (0)

// Skips the test, saying how to get them, where the FID Inception weights are absent.
#define REQUIRE_FID_WEIGHTS()                                                                   \
  do {                                                                                          \
    if (!std::ifstream(::fpa::default_inception_weights_path()))                                \
      GTEST_SKIP() << "no FID Inception weights at " << ::fpa::default_inception_weights_path() \
                   << ": run `make fid-weights` (make test does)";                             \
  } while (0)

// The statement throws fpa::Error whose message contains `needle`.
#define EXPECT_ERROR(stmt, needle)                                                              \
  do {                                                                                          \
    try {                                                                                       \
      (void)(stmt);                                                                             \
      ADD_FAILURE() << #stmt << " did not throw (expected \"" << (needle) << "\")";            \
    } catch (const ::fpa::Error& e_) {                                                          \
      EXPECT_NE(std::string(e_.what()).find(needle), std::string::npos)                         \
          << #stmt << " threw \"" << e_.what() << "\", expected it to contain \"" << (needle) << "\""; \
    }                                                                                           \
  } while (0)

namespace fpa::test {

// Bitwise equality of two tensors (same shape and dtype), naming the first differing element.
inline ::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return ::testing::AssertionFailure() << "shape or dtype";
  size_t bytes = a.numel() * dtype_size(a.dtype());
  const char *p = static_cast<const char*>(a.data()), *q = static_cast<const char*>(b.data());
  for (size_t i = 0; i < bytes; ++i)
    if (p[i] != q[i]) {
      size_t e = i / dtype_size(a.dtype());
      return ::testing::AssertionFailure() << "element " << e << ": " << a.to_vector()[e] << " vs " << b.to_vector()[e];
    }
  return ::testing::AssertionSuccess();
}

// max |a - ref| <= tol * max|ref| (tol itself when ref is all zeros), both read as float64.
inline void expect_near_max(const Tensor& a, const Tensor& ref, double tol, const std::string& what) {
  CheckResult r = allclose_to_max(a.to(DType::f64), ref.to(DType::f64), tol);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

// fn() run on `threads` OpenMP threads, the thread count restored afterwards.
template <typename F>
auto with_threads(int threads, F&& fn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto result = fn();
  omp_set_num_threads(saved);
  return result;
}

}  // namespace fpa::test
