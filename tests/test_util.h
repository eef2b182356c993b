// test_util.h: assertion macros shared by the test files.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "autograd/error.h"
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
