// test_feature_distances.cpp: the float64 mathematics behind FID and KID.
//   - symmetric_eigen: reconstruction A = U^T diag(l) U and orthonormal U on random, diagonal,
//     2x2, repeated-eigenvalue, rank-deficient, tiny and huge matrices; errors for bad input.
//   - FeatureStatsAccumulator, frechet_distance, kernel_inception_distance against the numpy /
//     scipy reference tests/fixtures/feature_distances.safetensors
//     (tools/reference/make_distance_fixture.py; a missing file skips those tests), plus the
//     properties: FID in closed form for diagonal covariances, FID(a, a) = 0, FID symmetric,
//     KID about 0 for one distribution and growing with a mean shift.
// Tolerances (|ours - ref| <= tol):
//   - stats: 1e-12 of the largest |entry| (mean: 1e-12 relative per entry). Sums are taken from
//     a shift, so the fixture's mean offset of 1000 (variance ~0.2) costs nothing; the plain
//     sum x x^T - n mu mu^T would miss by ~1e-8.
//   - FID, non-singular pair: 1e-12 of tr S_a + tr S_b + |mu_a - mu_b|^2, the size of the terms
//     that cancel (scipy's sqrtm and this code agree to ~5e-16 of it).
//   - FID, singular pair (40 samples, 64 dims, rank 39): a zero eigenvalue of S_a S_b computes
//     as rounding noise of size eps ||S_a|| ||S_b||, whose square root, up to
//     sqrt(eps tr S_a tr S_b), enters the reference's trace term (this code counts such
//     eigenvalues as zero). Tolerance: 2 dim sqrt(eps tr S_a tr S_b) = 2.5e-5 here; the sqrtm
//     and eigh references differ from each other by 1.9e-7, from this code by 3e-7 and 1e-7.
//   - KID with one full subset: 1e-12 relative (the sums run in another order than numpy's).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "autograd/error.h"
#include "nn/safetensors.h"
#include "tests/test_util.h"
#include "train/feature_distances.h"
#include "train/matmul_f64.h"
#include "train/symmetric_eigen.h"

namespace fpa::test {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
const std::string kFixturePath = "tests/fixtures/feature_distances.safetensors";

// A symmetric (n, n) matrix with N(0, 1) entries.
std::vector<double> random_symmetric(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> a(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) a[i * n + j] = a[j * n + i] = normal(rng);
  return a;
}

// A random orthogonal (n, n) matrix: the eigenvectors of a random symmetric one.
std::vector<double> random_orthogonal(int64_t n, uint64_t seed) {
  return symmetric_eigen(random_symmetric(n, seed), n, true).vectors;
}

// Q^T diag(values) Q for Q (n, n).
std::vector<double> with_eigenvalues(const std::vector<double>& values, const std::vector<double>& q) {
  const int64_t n = int64_t(values.size());
  std::vector<double> scaled(n * n), a(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) scaled[i * n + j] = values[i] * q[i * n + j];
  matmul_add_f64(a.data(), n, transposed(q.data(), n), row_major(scaled.data(), n), n, n, n);
  mirror_upper_f64(a.data(), n);  // exactly symmetric
  return a;
}

double max_abs(const std::vector<double>& x) {
  double m = 0;
  for (double v : x) m = std::max(m, std::fabs(v));
  return m;
}

// Expects max |A - U^T diag(l) U| <= tol max |A|, max |U U^T - I| <= tol and ascending l, for the
// decomposition e of a (n, n).
void expect_decomposition(const std::vector<double>& a, const SymmetricEigen& e, double tol) {
  const int64_t n = e.n;
  ASSERT_EQ(int64_t(e.vectors.size()), n * n);
  const std::vector<double> rebuilt = with_eigenvalues(e.values, e.vectors);
  double err = 0;
  for (int64_t i = 0; i < n * n; ++i) err = std::max(err, std::fabs(rebuilt[i] - a[i]));
  EXPECT_LE(err, tol * std::max(max_abs(a), std::numeric_limits<double>::min())) << "reconstruction, n = " << n;
  std::vector<double> gram(n * n, 0.0);  // U U^T
  matmul_add_f64(gram.data(), n, row_major(e.vectors.data(), n), transposed(e.vectors.data(), n), n, n, n);
  double orth = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) orth = std::max(orth, std::fabs(gram[i * n + j] - (i == j ? 1.0 : 0.0)));
  EXPECT_LE(orth, tol) << "orthonormality, n = " << n;
  EXPECT_TRUE(std::is_sorted(e.values.begin(), e.values.end()));
}

TEST(SymmetricEigen, RandomMatrixConvergesAndReconstructs) {
  const int64_t n = 300;
  const std::vector<double> a = random_symmetric(n, 1);
  const SymmetricEigen e = symmetric_eigen(a, n, true);
  expect_decomposition(a, e, 1e-12);
  EXPECT_EQ(symmetric_eigen(a, n, false).values, e.values);  // the same iteration without vectors
  double trace = 0, sum = 0;
  for (int64_t i = 0; i < n; ++i) trace += a[i * n + i], sum += e.values[i];
  EXPECT_NEAR(sum, trace, 1e-11 * n);
}

TEST(SymmetricEigen, SameResultForAnyThreadCount) {
  const int64_t n = 300;
  const std::vector<double> a = random_symmetric(n, 2);
  const SymmetricEigen one = with_threads(1, [&] { return symmetric_eigen(a, n, true); });
  const SymmetricEigen two = with_threads(2, [&] { return symmetric_eigen(a, n, true); });
  EXPECT_EQ(one.values, two.values);
  EXPECT_EQ(one.vectors, two.vectors);
}

TEST(SymmetricEigen, DiagonalAndOneByOne) {
  const SymmetricEigen one = symmetric_eigen({-3.5}, 1, true);
  EXPECT_EQ(one.values, std::vector<double>{-3.5});
  EXPECT_EQ(one.vectors, std::vector<double>{1.0});

  const std::vector<double> diagonal = {4, -1, 0, 2.5, 1e-3};
  const int64_t n = int64_t(diagonal.size());
  std::vector<double> a(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) a[i * n + i] = diagonal[i];
  const SymmetricEigen e = symmetric_eigen(a, n, true);
  std::vector<double> sorted = diagonal;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(e.values, sorted);
  for (int64_t i = 0; i < n; ++i) {  // unit vectors: the one of the matching diagonal entry
    const int64_t k = std::find(diagonal.begin(), diagonal.end(), e.values[i]) - diagonal.begin();
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(std::fabs(e.vectors[i * n + j]), j == k ? 1.0 : 0.0);
  }
}

TEST(SymmetricEigen, TwoByTwoClosedForm) {
  const double p = 2.0, q = -0.75, r = 0.5;  // [[p, q], [q, r]]
  const SymmetricEigen e = symmetric_eigen({p, q, q, r}, 2, true);
  const double mid = 0.5 * (p + r), radius = std::hypot(0.5 * (p - r), q);
  EXPECT_NEAR(e.values[0], mid - radius, 4 * kEps * 2);
  EXPECT_NEAR(e.values[1], mid + radius, 4 * kEps * 2);
  expect_decomposition({p, q, q, r}, e, 1e-15);
}

TEST(SymmetricEigen, RepeatedEigenvalues) {
  const int64_t n = 40;
  std::vector<double> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = i < 15 ? 1.0 : i < 30 ? 2.0 : i < 39 ? -3.0 : 7.0;
  const std::vector<double> a = with_eigenvalues(values, random_orthogonal(n, 3));
  const SymmetricEigen e = symmetric_eigen(a, n, true);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(e.values[i], sorted[i], 1e-13 * 7) << i;
  expect_decomposition(a, e, 1e-13);
}

TEST(SymmetricEigen, RankDeficientPsd) {
  const int64_t n = 60, rank = 10;
  std::vector<double> values(n, 0.0);
  for (int64_t i = 0; i < rank; ++i) values[n - 1 - i] = 1.0 + i;
  const std::vector<double> a = with_eigenvalues(values, random_orthogonal(n, 4));
  const SymmetricEigen e = symmetric_eigen(a, n, true);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(e.values[i], i < n - rank ? 0.0 : double(i - (n - rank) + 1), 1e-13 * 10);
  expect_decomposition(a, e, 1e-13);
  // A matrix with exact zero rows and columns, and the zero matrix.
  std::vector<double> b(n * n, 0.0);
  b[0] = 2, b[1] = b[n] = 1, b[n + 1] = 2;
  expect_decomposition(b, symmetric_eigen(b, n, true), 1e-15);
  const SymmetricEigen zero = symmetric_eigen(std::vector<double>(n * n, 0.0), n, true);
  EXPECT_EQ(zero.values, std::vector<double>(n, 0.0));
}

TEST(SymmetricEigen, TinyAndHugeEntriesAndOnlyTheUpperTriangle) {
  const int64_t n = 30;
  const std::vector<double> a = random_symmetric(n, 5);
  const SymmetricEigen e = symmetric_eigen(a, n, false);
  for (double scale : {1e-300, 1e300}) {
    std::vector<double> scaled = a;
    for (double& x : scaled) x *= scale;
    const SymmetricEigen s = symmetric_eigen(scaled, n, false);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(s.values[i] / scale, e.values[i], 1e-13) << scale;
  }
  std::vector<double> garbage_below = a;
  for (int64_t i = 1; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) garbage_below[i * n + j] = 1e6;
  EXPECT_EQ(symmetric_eigen(garbage_below, n, false).values, e.values);
}

TEST(SymmetricEigen, Errors) {
  EXPECT_ERROR(symmetric_eigen({}, 0, false), "n must be at least 1, got 0");
  EXPECT_ERROR(symmetric_eigen({1, 2, 3}, 2, false), "a has 3 entries, expected n * n = 4");
  EXPECT_ERROR(symmetric_eigen({1, std::nan(""), 0, 1}, 2, false), "entry (0, 1) of the 2x2 matrix is nan");
}

// Access to the fixture file for the FeatureDistances tests; those that need it start with
// SKIP_WITHOUT_FIXTURE().
class FeatureDistances : public ::testing::Test {
 protected:
  bool load_fixture() {
    if (!std::filesystem::exists(kFixturePath)) return false;
    file_ = nn::load_safetensors(kFixturePath);
    return true;
  }
  std::vector<double> values(const std::string& name) const {
    const Tensor* t = file_.find(name);
    EXPECT_NE(t, nullptr) << kFixturePath << " lacks " << name;
    return t ? t->to_vector() : std::vector<double>{};
  }
  double scalar(const std::string& name) const {
    std::vector<double> v = values(name);
    return v.empty() ? std::nan("") : v[0];
  }
  // A feature set (rows, dim) as float rows (the stored values are float32 values).
  std::vector<float> features(const std::string& name, int64_t* rows, int64_t* dim) const {
    const Tensor* t = file_.find("features." + name);
    EXPECT_NE(t, nullptr) << kFixturePath << " lacks features." << name;
    if (!t) return {};
    *rows = t->shape()[0];
    *dim = t->shape()[1];
    std::vector<double> v = t->to_vector();
    return std::vector<float>(v.begin(), v.end());
  }
  FeatureStats stats(const std::string& name) const {
    int64_t rows = 0, dim = 0;
    std::vector<float> x = features(name, &rows, &dim);
    return feature_stats(x.data(), rows, dim);
  }
  FeatureStats reference_stats(const std::string& name) const {
    FeatureStats s;
    s.mean = values("stats." + name + ".mean");
    s.covariance = values("stats." + name + ".cov");
    s.dim = int64_t(s.mean.size());
    s.count = file_.find("features." + name)->shape()[0];
    return s;
  }
  nn::NamedTensors file_;
};

#define SKIP_WITHOUT_FIXTURE() \
  if (!load_fixture()) GTEST_SKIP() << kFixturePath << " not found (tools/reference/make_distance_fixture.py)"

// Stats against the stored mean (1e-12 relative per entry) and covariance (1e-12 of max |cov|).
void expect_stats_match(const FeatureStats& ours, const FeatureStats& ref, const std::string& what) {
  ASSERT_EQ(ours.dim, ref.dim) << what;
  EXPECT_EQ(ours.count, ref.count) << what;
  for (int64_t i = 0; i < ref.dim; ++i) EXPECT_NEAR(ours.mean[i], ref.mean[i], 1e-12 * std::fabs(ref.mean[i])) << what;
  const double scale = max_abs(ref.covariance);
  double err = 0;
  for (size_t i = 0; i < ref.covariance.size(); ++i)
    err = std::max(err, std::fabs(ours.covariance[i] - ref.covariance[i]));
  EXPECT_LE(err, 1e-12 * scale) << what << ": covariance";
}

TEST_F(FeatureDistances, StatsMatchNumpyOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  for (const std::string name : {"a", "b", "c", "d"}) expect_stats_match(stats(name), reference_stats(name), name);
}

TEST_F(FeatureDistances, StatsIndependentOfBatchingOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  int64_t rows = 0, dim = 0;
  const std::vector<float> x = features("a", &rows, &dim);
  for (const std::vector<int64_t>& batches : {std::vector<int64_t>{1, 7, 100, 192}, {299, 1}, {150, 0, 150}}) {
    FeatureStatsAccumulator acc(dim);
    int64_t start = 0;
    for (int64_t n : batches) {
      acc.add(x.data() + start * dim, n);
      start += n;
    }
    ASSERT_EQ(start, rows);
    expect_stats_match(acc.finish(), reference_stats("a"), "batches of a starting with " + std::to_string(batches[0]));
  }
}

TEST_F(FeatureDistances, AccumulatorErrors) {
  EXPECT_ERROR(FeatureStatsAccumulator(0), "dim must be at least 1, got 0");
  FeatureStatsAccumulator acc(3);
  const float row[3] = {1, 2, 3};
  acc.add(row, 1);
  EXPECT_ERROR(acc.finish(), "a covariance needs at least 2 rows, got 1");
  EXPECT_ERROR(acc.add(row, -1), "n must be >= 0, got -1");
}

// The size of the terms that cancel in FID.
double fid_scale(const FeatureStats& a, const FeatureStats& b) {
  double s = 0;
  for (int64_t i = 0; i < a.dim; ++i) {
    const double d = a.mean[i] - b.mean[i];
    s += d * d + a.covariance[i * a.dim + i] + b.covariance[i * a.dim + i];
  }
  return s;
}

TEST_F(FeatureDistances, FidMatchesScipyOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  const FeatureStats a = stats("a"), b = stats("b");
  const double fid = frechet_distance(a, b), tol = 1e-12 * fid_scale(a, b);
  EXPECT_NEAR(fid, scalar("fid.ab"), tol);
  EXPECT_NEAR(fid, scalar("fid_eigh.ab"), tol);
  EXPECT_NEAR(frechet_distance(reference_stats("a"), reference_stats("b")), scalar("fid.ab"), tol);
}

TEST_F(FeatureDistances, FidMatchesScipyForSingularCovariancesOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  const FeatureStats c = stats("c"), d = stats("d");
  const double fid = frechet_distance(c, d);
  const double tol = 2.0 * double(c.dim) * std::sqrt(kEps * covariance_trace(c) * covariance_trace(d));
  EXPECT_NEAR(fid, scalar("fid.cd"), tol);
  EXPECT_NEAR(fid, scalar("fid_eigh.cd"), tol);
}

// With b's rows (fewer than dim), the (count, count) path gives the (dim, dim) path's distance:
// the singular fixture pair against scipy, and a well-conditioned a against 50 rows of b.
TEST_F(FeatureDistances, FidFromRowsOfASmallSetMatchesOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  int64_t rows = 0, dim = 0;
  const std::vector<float> d_rows = features("d", &rows, &dim);
  const FeatureStats c = stats("c"), d = stats("d");
  const double tol = 2.0 * double(c.dim) * std::sqrt(kEps * covariance_trace(c) * covariance_trace(d));
  EXPECT_NEAR(frechet_distance(c, d, d_rows.data()), scalar("fid.cd"), tol);
  const std::vector<float> b_rows = features("b", &rows, &dim);
  const FeatureStats a = stats("a"), b50 = feature_stats(b_rows.data(), 50, dim);
  EXPECT_NEAR(frechet_distance(a, b50, b_rows.data()), frechet_distance(a, b50), 1e-11 * fid_scale(a, b50));
  EXPECT_ERROR(frechet_distance(a, stats("b"), b_rows.data()), "b's rows are for b.count <= dim, got count 250");
}

TEST_F(FeatureDistances, FidOfASetWithItselfIsZeroOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  for (const std::string name : {"a", "c"}) {
    const FeatureStats s = stats(name);
    EXPECT_LT(std::fabs(frechet_distance(s, s)), 1e-9 * covariance_trace(s)) << name;
  }
}

TEST_F(FeatureDistances, FidIsSymmetricOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  const FeatureStats a = stats("a"), b = stats("b"), c = stats("c"), d = stats("d");
  EXPECT_NEAR(frechet_distance(a, b), frechet_distance(b, a), 1e-12 * fid_scale(a, b));
  EXPECT_NEAR(frechet_distance(c, d), frechet_distance(d, c),
              2.0 * double(c.dim) * std::sqrt(kEps * covariance_trace(c) * covariance_trace(d)));
}

TEST_F(FeatureDistances, FidClosedFormForDiagonalCovariances) {
  // Commuting covariances: tr (S_a S_b)^(1/2) = sum sqrt(a_i b_i), so
  // FID = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2; a zero variance included.
  const std::vector<double> va = {4, 1, 0.25, 9, 0}, vb = {1, 1, 1, 2, 3};
  const int64_t n = int64_t(va.size());
  FeatureStats a{5, n, {1, 2, 3, 4, 5}, std::vector<double>(n * n, 0.0)};
  FeatureStats b{7, n, {1, 2, 3, 4, 7}, std::vector<double>(n * n, 0.0)};
  double expected = 4;  // the mean term
  for (int64_t i = 0; i < n; ++i) {
    a.covariance[i * n + i] = va[i];
    b.covariance[i * n + i] = vb[i];
    expected += (std::sqrt(va[i]) - std::sqrt(vb[i])) * (std::sqrt(va[i]) - std::sqrt(vb[i]));
  }
  EXPECT_NEAR(frechet_distance(a, b), expected, 1e-14 * 40);
}

TEST_F(FeatureDistances, FidErrors) {
  FeatureStats a{10, 2, {0, 0}, {1, 0, 0, 1}}, b{10, 3, {0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1}};
  EXPECT_ERROR(frechet_distance(a, b), "feature dimensions differ: a.dim = 2, b.dim = 3");
  FeatureStats one = a;
  one.count = 1;
  EXPECT_ERROR(frechet_distance(a, one), "b.count must be at least 2");
  FeatureStats short_mean = a;
  short_mean.mean.pop_back();
  EXPECT_ERROR(frechet_distance(short_mean, a), "a.mean has 1 entries, expected dim = 2");
  FeatureStats infinite = a;
  infinite.covariance[1] = INFINITY;
  EXPECT_ERROR(frechet_distance(a, infinite), "b.covariance (0, 1) is inf");
}

TEST_F(FeatureDistances, KidMatchesNumpyWithOneFullSubsetOnFixture) {
  SKIP_WITHOUT_FIXTURE();
  for (const auto& [pair, x, y] :
       {std::tuple<std::string, std::string, std::string>{"kxy", "kx", "ky"}, {"cd", "c", "d"}}) {
    int64_t nx = 0, ny = 0, dim = 0;
    const std::vector<float> fx = features(x, &nx, &dim), fy = features(y, &ny, &dim);
    const KidResult kid = kernel_inception_distance(fx.data(), nx, fy.data(), ny, dim, 1, nx);
    const double ref = scalar("kid." + pair);
    EXPECT_NEAR(kid.mean, ref, 1e-12 * std::fabs(ref)) << pair;
    EXPECT_EQ(kid.std, 0.0);
    EXPECT_EQ(kid.subset_size, nx);
    EXPECT_EQ(kid.subsets, 1);
  }
}

// n rows of dim N(shift, 1) floats.
std::vector<float> normal_rows(int64_t n, int64_t dim, double shift, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(shift, 1.0);
  std::vector<float> x(n * dim);
  for (float& v : x) v = float(normal(rng));
  return x;
}

TEST_F(FeatureDistances, KidNearZeroForOneDistributionAndGrowsWithAShift) {
  const int64_t n = 1000, dim = 16, subsets = 20, size = 100;  // subsets share few rows
  std::mt19937_64 rng(7);
  const std::vector<float> pool = normal_rows(2 * n, dim, 0.0, rng);  // two disjoint halves
  const KidResult same = kernel_inception_distance(pool.data(), n, pool.data() + n * dim, n, dim, subsets, size, 1);
  const double standard_error = same.std / std::sqrt(double(subsets));
  EXPECT_GT(same.std, 0.0);
  EXPECT_LT(std::fabs(same.mean), 3 * standard_error);
  double previous = same.mean;
  for (double shift : {0.25, 0.5, 1.0}) {
    std::vector<float> moved(pool.begin() + n * dim, pool.end());
    for (float& v : moved) v += float(shift);
    const KidResult kid = kernel_inception_distance(pool.data(), n, moved.data(), n, dim, subsets, size, 1);
    EXPECT_GT(kid.mean, previous + 3 * standard_error) << shift;
    previous = kid.mean;
  }
}

TEST_F(FeatureDistances, KidIsDeterministicForASeed) {
  std::mt19937_64 rng(8);
  const std::vector<float> a = normal_rows(300, 8, 0.0, rng), b = normal_rows(200, 8, 0.1, rng);
  const KidResult first = kernel_inception_distance(a.data(), 300, b.data(), 200, 8, 5, 50, 42);
  const KidResult again =
      with_threads(1, [&] { return kernel_inception_distance(a.data(), 300, b.data(), 200, 8, 5, 50, 42); });
  const KidResult other = kernel_inception_distance(a.data(), 300, b.data(), 200, 8, 5, 50, 43);
  EXPECT_EQ(first.mean, again.mean);
  EXPECT_EQ(first.std, again.std);
  EXPECT_NE(first.mean, other.mean);
  const KidResult capped = kernel_inception_distance(a.data(), 300, b.data(), 200, 8, 2, 1000, 0);
  EXPECT_EQ(capped.subset_size, 200);
}

TEST_F(FeatureDistances, KidErrors) {
  const std::vector<float> x(8, 1.0f);
  EXPECT_ERROR(kernel_inception_distance(x.data(), 1, x.data(), 4, 2), "each set needs at least 2 rows, got na = 1");
  EXPECT_ERROR(kernel_inception_distance(x.data(), 4, x.data(), 4, 2, 0), "subsets must be at least 1, got 0");
  EXPECT_ERROR(kernel_inception_distance(x.data(), 4, x.data(), 4, 2, 1, 1), "subset_size must be at least 2, got 1");
  EXPECT_ERROR(kernel_inception_distance(x.data(), 4, x.data(), 4, 0), "dim must be at least 1, got 0");
}

}  // namespace
}  // namespace fpa::test
