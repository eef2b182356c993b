// feature_distances.cpp: FID and KID of feature_distances.h. The O(n^3) and O(m^2 dim) work is in
// matmul_f64 (blocked, parallel, thread-count independent) and symmetric_eigen; everything
// else is O(dim^2) or less and runs in a fixed order, so results do not depend on the thread
// count.
#include "train/feature_distances.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "autograd/error.h"
#include "train/matmul_f64.h"
#include "train/symmetric_eigen.h"

namespace fpa {
namespace {

constexpr int64_t kChunkRows = 256;  // rows per rank-k update of the covariance

// Checks one FeatureStats argument of `op`: sizes consistent with dim, count >= 2, finite values.
void check_stats(const FeatureStats& s, const char* op, const char* name) {
  FPA_CHECK(s.dim >= 1, op, ": ", name, ".dim must be at least 1, got ", s.dim);
  FPA_CHECK(int64_t(s.mean.size()) == s.dim, op, ": ", name, ".mean has ", s.mean.size(),
            " entries, expected dim = ", s.dim);
  FPA_CHECK(int64_t(s.covariance.size()) == s.dim * s.dim, op, ": ", name, ".covariance has ", s.covariance.size(),
            " entries, expected dim * dim = ", s.dim * s.dim);
  FPA_CHECK(s.count >= 2, op, ": ", name, ".count must be at least 2 (a covariance needs two samples), got ", s.count);
  for (int64_t i = 0; i < s.dim; ++i)
    FPA_CHECK(std::isfinite(s.mean[i]), op, ": ", name, ".mean[", i, "] is ", s.mean[i]);
  for (int64_t i = 0; i < s.dim * s.dim; ++i)
    FPA_CHECK(std::isfinite(s.covariance[i]), op, ": ", name, ".covariance (", i / s.dim, ", ", i % s.dim, ") is ",
              s.covariance[i]);
}

// The (n, n) matrix with its upper triangle mirrored onto the lower.
std::vector<double> mirrored_upper(const std::vector<double>& s, int64_t n) {
  std::vector<double> out(s);
  mirror_upper_f64(out.data(), n);
  return out;
}

// The level below which a computed eigenvalue of a symmetric (n, n) matrix cannot be told from
// zero: symmetric_eigen is accurate to a small multiple of eps max|lambda| (absolutely), taken
// as n eps max|lambda|. Eigenvalues of a singular covariance's null space come out as noise of
// that size; their square roots (sqrt(eps) times the scale) would add up over the null space, so
// they count as zero.
double noise_floor(const std::vector<double>& ascending) {
  const double largest = std::max(std::fabs(ascending.front()), std::fabs(ascending.back()));
  return double(ascending.size()) * std::numeric_limits<double>::epsilon() * largest;
}

double root_above(double value, double floor) { return value > floor ? std::sqrt(value) : 0.0; }

// tr((S_a S_b)^(1/2)) for symmetric PSD S_a, S_b (n, n). With S_a = U diag(l) U^T and
// R = S_a^(1/2) = U D U^T, D = diag(sqrt(l)) (0 for l at or below the noise floor):
// R S_b R = U (D C D) U^T with C = U^T S_b U, so the eigenvalues of R S_b R (those of S_a S_b) are
// those of D C D, and R is never formed. Two products: Y = U^T S_b (n^3 multiply-adds) and
// C = Y U (upper triangle, n^3 / 2).
double trace_sqrt_product(const std::vector<double>& sa, const std::vector<double>& sb, int64_t n) {
  const SymmetricEigen ea = symmetric_eigen(sa, n, /*want_vectors=*/true);
  const double* ut = ea.vectors.data();  // (n, n) U^T: row i = eigenvector i
  std::vector<double> y(n * n, 0.0);     // (n, n) U^T S_b
  matmul_add_f64(y.data(), n, row_major(ut, n), row_major(sb.data(), n), n, n, n);
  std::vector<double> m(n * n, 0.0);  // (n, n) C = U^T S_b U, then D C D (upper triangle)
  matmul_add_f64(m.data(), n, row_major(y.data(), n), transposed(ut, n), n, n, n, Triangle::upper);
  std::vector<double> root(n);  // (n) the diagonal of D
  const double floor_a = noise_floor(ea.values);
  for (int64_t i = 0; i < n; ++i) root[i] = root_above(ea.values[i], floor_a);
#pragma omp parallel for schedule(static) if (n > 256)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) m[i * n + j] *= root[i] * root[j];
  const SymmetricEigen em = symmetric_eigen(std::move(m), n, /*want_vectors=*/false);
  const double floor_m = noise_floor(em.values);
  double trace = 0;
  for (double l : em.values) trace += root_above(l, floor_m);
  return trace;
}

// A uniform integer in [0, bound) (rejection sampling: no modulo bias, the same on every platform).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t top = std::mt19937_64::max();
  const uint64_t limit = top - top % bound;  // a multiple of bound
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % bound;
}

// Indices of m rows out of n without replacement: 0 .. n - 1 in order when m == n, else the
// first m entries of a partial Fisher-Yates shuffle of 0 .. n - 1.
std::vector<int64_t> draw_rows(int64_t n, int64_t m, std::mt19937_64& rng) {
  std::vector<int64_t> index(n);
  std::iota(index.begin(), index.end(), 0);
  if (m < n)
    for (int64_t i = 0; i < m; ++i) std::swap(index[i], index[i + int64_t(uniform_below(rng, uint64_t(n - i)))]);
  index.resize(m);
  return index;
}

// Copies rows[index] (float, (*, dim)) into out (index.size(), dim) as float64.
void gather_rows(double* out, const float* rows, const std::vector<int64_t>& index, int64_t dim) {
#pragma omp parallel for schedule(static) if (index.size() * dim > 100000)
  for (int64_t r = 0; r < int64_t(index.size()); ++r)
    for (int64_t j = 0; j < dim; ++j) out[r * dim + j] = double(rows[index[r] * dim + j]);
}

double cubic_kernel(double dot, double dim) {
  const double base = dot / dim + 1;
  return base * base * base;
}

// The unbiased MMD^2 of x = stacked rows 0 .. m - 1 and y = rows m .. 2m - 1 (stacked: (2m, dim)).
// gram (2m, 2m) is scratch for the dot products (upper triangle); each row's kernel sums are
// kept apart and added in row order.
double unbiased_mmd2(const std::vector<double>& stacked, int64_t m, int64_t dim, std::vector<double>& gram) {
  const int64_t m2 = 2 * m;
  std::fill(gram.begin(), gram.end(), 0.0);
  matmul_add_f64(gram.data(), m2, row_major(stacked.data(), dim), transposed(stacked.data(), dim), m2, m2, dim,
                 Triangle::upper);
  std::vector<double> same(m2), cross(m);  // per row: sum over j > i in its own set; over all of y
#pragma omp parallel for schedule(dynamic, 16) if (m2 > 256)
  for (int64_t i = 0; i < m2; ++i) {
    const double* g = gram.data() + i * m2;
    const int64_t set_end = i < m ? m : m2;
    double s = 0;
    for (int64_t j = i + 1; j < set_end; ++j) s += cubic_kernel(g[j], double(dim));
    same[i] = s;
    if (i < m) {
      double c = 0;
      for (int64_t j = m; j < m2; ++j) c += cubic_kernel(g[j], double(dim));
      cross[i] = c;
    }
  }
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < m; ++i) xx += same[i], xy += cross[i];
  for (int64_t i = m; i < m2; ++i) yy += same[i];
  const double pairs = double(m) * double(m - 1);
  return 2 * (xx + yy) / pairs - 2 * xy / (double(m) * double(m));
}

}  // namespace

FeatureStatsAccumulator::FeatureStatsAccumulator(int64_t dim) : dim_(dim) {
  FPA_CHECK(dim >= 1, "FeatureStatsAccumulator: dim must be at least 1, got ", dim);
  shift_.assign(dim, 0.0);
  sum_.assign(dim, 0.0);
  cross_.assign(dim * dim, 0.0);
}

void FeatureStatsAccumulator::add(const float* rows, int64_t n) {
  FPA_CHECK(n >= 0, "FeatureStatsAccumulator::add: n must be >= 0, got ", n);
  if (n == 0) return;
  FPA_CHECK(rows != nullptr, "FeatureStatsAccumulator::add: rows is null for n = ", n);
  if (count_ == 0) {  // the shift: this batch's mean
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < dim_; ++j) shift_[j] += double(rows[r * dim_ + j]);
    for (double& s : shift_) s /= double(n);
  }
  for (int64_t r0 = 0; r0 < n; r0 += kChunkRows) add_chunk(rows + r0 * dim_, std::min(kChunkRows, n - r0));
  count_ += n;
}

// sum += sum of the rows (n <= kChunkRows) minus the shift; cross += their outer products.
void FeatureStatsAccumulator::add_chunk(const float* rows, int64_t n) {
  centered_.resize(kChunkRows * dim_);
  double* c = centered_.data();  // (n, dim)
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < dim_; ++j) {
      c[r * dim_ + j] = double(rows[r * dim_ + j]) - shift_[j];
      sum_[j] += c[r * dim_ + j];
    }
  matmul_add_f64(cross_.data(), dim_, transposed(c, dim_), row_major(c, dim_), dim_, dim_, n, Triangle::upper);
}

FeatureStats FeatureStatsAccumulator::finish() const {
  FPA_CHECK(count_ >= 2, "FeatureStatsAccumulator::finish: a covariance needs at least 2 rows, got ", count_);
  FeatureStats s;
  s.count = count_;
  s.dim = dim_;
  const double n = double(count_);
  s.mean.resize(dim_);
  for (int64_t j = 0; j < dim_; ++j) s.mean[j] = shift_[j] + sum_[j] / n;
  s.covariance.assign(dim_ * dim_, 0.0);
  // sum (x - mu)(x - mu)^T = cross - sum sum^T / n, with sum and cross relative to the shift.
  for (int64_t i = 0; i < dim_; ++i)
    for (int64_t j = i; j < dim_; ++j)
      s.covariance[i * dim_ + j] = (cross_[i * dim_ + j] - sum_[i] * sum_[j] / n) / (n - 1);
  mirror_upper_f64(s.covariance.data(), dim_);
  return s;
}

FeatureStats feature_stats(const float* rows, int64_t n, int64_t dim) {
  FeatureStatsAccumulator acc(dim);
  acc.add(rows, n);
  return acc.finish();
}

double covariance_trace(const FeatureStats& s) {
  double t = 0;
  for (int64_t i = 0; i < s.dim; ++i) t += s.covariance[i * s.dim + i];
  return t;
}

namespace {

// |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 cross.
double frechet_from(const FeatureStats& a, const FeatureStats& b, double cross) {
  double mean_term = 0;
  for (int64_t i = 0; i < a.dim; ++i) {
    const double d = a.mean[i] - b.mean[i];
    mean_term += d * d;
  }
  return mean_term + covariance_trace(a) + covariance_trace(b) - 2 * cross;
}

void check_pair(const FeatureStats& a, const FeatureStats& b) {
  check_stats(a, "frechet_distance", "a");
  check_stats(b, "frechet_distance", "b");
  FPA_CHECK(a.dim == b.dim, "frechet_distance: feature dimensions differ: a.dim = ", a.dim, ", b.dim = ", b.dim);
}

// tr((S_a S_b)^(1/2)) with S_b = B^T B / (m - 1), B (m, n) the centred rows: the sum of the
// square roots of the eigenvalues of B S_a B^T / (m - 1).
double trace_sqrt_product_low_rank(const std::vector<double>& sa, const std::vector<double>& centred, int64_t m,
                                   int64_t n) {
  const std::vector<double> full_a = mirrored_upper(sa, n);
  std::vector<double> y(m * n, 0.0);  // (m, n) B S_a
  matmul_add_f64(y.data(), n, row_major(centred.data(), n), row_major(full_a.data(), n), m, n, n);
  std::vector<double> g(m * m, 0.0);  // (m, m) B S_a B^T, upper triangle
  matmul_add_f64(g.data(), m, row_major(y.data(), n), transposed(centred.data(), n), m, m, n, Triangle::upper);
  for (double& v : g) v /= double(m - 1);
  const SymmetricEigen e = symmetric_eigen(std::move(g), m, /*want_vectors=*/false);
  const double floor = noise_floor(e.values);
  double trace = 0;
  for (double l : e.values) trace += root_above(l, floor);
  return trace;
}

}  // namespace

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  check_pair(a, b);
  return frechet_from(a, b, trace_sqrt_product(a.covariance, mirrored_upper(b.covariance, a.dim), a.dim));
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b, const float* b_rows) {
  check_pair(a, b);
  FPA_CHECK(b_rows != nullptr, "frechet_distance: b_rows is null");
  FPA_CHECK(b.count <= b.dim, "frechet_distance: b's rows are for b.count <= dim, got count ", b.count, " and dim ",
            b.dim);
  const int64_t m = b.count, n = b.dim;
  std::vector<double> centred(m * n);  // (m, n) b's rows minus b.mean
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) centred[i * n + j] = double(b_rows[i * n + j]) - b.mean[j];
  return frechet_from(a, b, trace_sqrt_product_low_rank(a.covariance, centred, m, n));
}

KidResult kernel_inception_distance(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim,
                                    int64_t subsets, int64_t subset_size, uint64_t seed) {
  FPA_CHECK(dim >= 1, "kernel_inception_distance: dim must be at least 1, got ", dim);
  FPA_CHECK(na >= 2 && nb >= 2, "kernel_inception_distance: each set needs at least 2 rows, got na = ", na,
            ", nb = ", nb);
  FPA_CHECK(subsets >= 1, "kernel_inception_distance: subsets must be at least 1, got ", subsets);
  FPA_CHECK(subset_size >= 2, "kernel_inception_distance: subset_size must be at least 2, got ", subset_size);
  FPA_CHECK(a != nullptr && b != nullptr, "kernel_inception_distance: a or b is null");
  KidResult r;
  r.subsets = subsets;
  r.subset_size = std::min({subset_size, na, nb});
  const int64_t m = r.subset_size;
  std::mt19937_64 rng(seed);
  std::vector<double> stacked(2 * m * dim);  // (2m, dim) the subset of a, then that of b
  std::vector<double> gram(4 * m * m);       // (2m, 2m)
  std::vector<double> values(subsets);
  for (int64_t s = 0; s < subsets; ++s) {
    gather_rows(stacked.data(), a, draw_rows(na, m, rng), dim);
    gather_rows(stacked.data() + m * dim, b, draw_rows(nb, m, rng), dim);
    values[s] = unbiased_mmd2(stacked, m, dim, gram);
  }
  for (double v : values) r.mean += v;
  r.mean /= double(subsets);
  double squares = 0;
  for (double v : values) squares += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(squares / double(subsets));
  return r;
}

}  // namespace fpa
