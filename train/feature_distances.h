// feature_distances.h: the float64 mathematics of two image-quality measures computed from
// feature vectors (Inception pool features in practice, but any float rows):
//   - FID, the Frechet distance between Gaussians fitted to two sets:
//       |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)),
//     from streamed means and covariances (FeatureStatsAccumulator);
//   - KID, the unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / dim + 1)^3,
//     averaged over random equal-size subsets of the two sets.
// Not here: running the Inception network, reading images, or any tensor or device code.
#pragma once
#include <cstdint>
#include <vector>

namespace fpa {

// The mean and covariance of `count` feature vectors of `dim` entries.
struct FeatureStats {
  int64_t count = 0, dim = 0;
  std::vector<double> mean;        // (dim)
  std::vector<double> covariance;  // (dim, dim) unbiased (divided by count - 1), as numpy.cov(rowvar=False)
};

// Streams rows into FeatureStats in float64. Sums are taken relative to the mean of the first
// batch (a shift that removes the cancellation a large mean would cause in sum x x^T - n mu mu^T);
// the cross products are blocked, parallel rank-k updates of the upper triangle.
class FeatureStatsAccumulator {
 public:
  explicit FeatureStatsAccumulator(int64_t dim);
  void add(const float* rows, int64_t n);  // rows (n, dim); n = 0 is allowed
  FeatureStats finish() const;             // needs at least 2 rows; more may be added afterwards
  int64_t count() const { return count_; }
  int64_t dim() const { return dim_; }

 private:
  void add_chunk(const float* rows, int64_t n);
  int64_t dim_, count_ = 0;
  std::vector<double> shift_;     // (dim) the first batch's mean
  std::vector<double> sum_;       // (dim) sum of (x - shift)
  std::vector<double> cross_;     // (dim, dim) sum of (x - shift)(x - shift)^T, upper triangle only
  std::vector<double> centered_;  // (chunk, dim) scratch: a chunk of rows minus the shift
};

// FeatureStats of the rows (n, dim) in one call.
FeatureStats feature_stats(const float* rows, int64_t n, int64_t dim);

// tr(S): the sum of the covariance's diagonal.
double covariance_trace(const FeatureStats& s);

// The Frechet distance between N(a.mean, a.covariance) and N(b.mean, b.covariance). The trace
// term is sum sqrt(lambda) over the eigenvalues lambda of S_a^(1/2) S_b S_a^(1/2), which are
// those of S_a S_b; symmetric eigen-decompositions keep it real and defined for singular
// covariances. Eigenvalues (of S_a, and of that product) below the rounding level
// dim * eps * max|lambda| count as zero. Each covariance is taken as the mirror of its upper
// triangle.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// The same distance with b also given by all its rows, b_rows (b.count, dim), b.count <= dim:
// S_b = B^T B / (count - 1) with B the rows minus b.mean, so the eigenvalues of S_a S_b are those
// of B S_a B^T / (count - 1), a (count, count) matrix, and no (dim, dim) decomposition is needed
// (a few images against many: training's --fid-n, small test sets).
double frechet_distance(const FeatureStats& a, const FeatureStats& b, const float* b_rows);

struct KidResult {
  double mean = 0, std = 0;  // over the subsets; std with ddof 0 (numpy's default)
  int64_t subsets = 0, subset_size = 0;
};

// KID of the rows a (na, dim) and b (nb, dim): for each of `subsets` subsets, m =
// min(subset_size, na, nb) rows of a and m rows of b drawn without replacement (std::mt19937_64
// seeded with `seed`; all rows in order when m equals the set's size), the unbiased estimate
//   sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
//   - 2 sum_{i, j} k(x_i, y_j) / m^2.
// The result is deterministic for a seed and does not depend on the thread count.
KidResult kernel_inception_distance(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim,
                                    int64_t subsets = 100, int64_t subset_size = 1000, uint64_t seed = 0);

}  // namespace fpa
