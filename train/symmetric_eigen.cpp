// symmetric_eigen.cpp: the eigen-decomposition of symmetric_eigen.h, in four stages:
//   1. scale A by its largest entry (no overflow or underflow in the squares that follow);
//   2. Householder tridiagonalisation A = Q T Q^T, Q = H_0 H_1 ... H_{n-3}, H_k = I - tau_k v_k v_k^T
//      with v_k zero before index k + 1, on the upper triangle only. Step k applies the rank-2
//      update A -= v w^T + w v^T of reflection k - 1 and, in the same pass over each row, forms
//      A v_k for reflection k (each stored entry standing for (i, j) and (j, i)), so the trailing
//      block is read once per step; chunks of rows run in parallel;
//   3. (vectors) Z = Q^T = I H_{n-3} ... H_0, the reflections applied in blocks
//      (I - V t V^T: two matrix products each, train/matmul_f64.h);
//   4. the implicit symmetric QR iteration with Wilkinson shifts on T: each sweep chases a bulge
//      down an unreduced block [low, high] with plane rotations P; T = W diag W^T with
//      W^T = P_N ... P_1, so the eigenvectors (rows) are P_N ... P_1 Z. Rotations are buffered and
//      applied to strips of columns of Z that stay in cache, in parallel.
// Storage is row-major throughout; rotations act on rows of Z. Every parallel loop splits its
// work the same way for any thread count, so results do not depend on it.
#include "train/symmetric_eigen.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/error.h"
#include "train/matmul_f64.h"

namespace fpa {
namespace {

struct Tridiagonal {
  std::vector<double> diag;  // (n)
  std::vector<double> off;   // (n - 1): off[i] = T[i][i + 1] = T[i + 1][i]
};

// Checks the upper triangle of `a` is finite and divides it by its largest entry; returns that
// divisor (1 for a zero matrix).
double check_and_scale(std::vector<double>& a, int64_t n) {
  double largest = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) {
      const double x = a[i * n + j];
      FPA_CHECK(std::isfinite(x), "symmetric_eigen: entry (", i, ", ", j, ") of the ", n, "x", n, " matrix is ", x);
      largest = std::max(largest, std::fabs(x));
    }
  const double scale = largest > 0 ? largest : 1.0;
  const double inverse = 1.0 / scale;
#pragma omp parallel for schedule(static) if (n > 256)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) a[i * n + j] *= inverse;
  return scale;
}

// The reflection H = I - tau v v^T with H x = beta e_0 for x (m): overwrites x with v (v[0] = 1)
// and returns tau; tau = 0 (H = I, beta = x[0]) when x[1..] is zero.
double make_reflection(double* x, int64_t m, double* beta) {
  double tail = 0;  // |x[1..]|^2
  for (int64_t i = 1; i < m; ++i) tail += x[i] * x[i];
  const double alpha = x[0];
  if (tail == 0) {
    *beta = alpha;
    x[0] = 1;
    for (int64_t i = 1; i < m; ++i) x[i] = 0;
    return 0;
  }
  const double norm = std::sqrt(alpha * alpha + tail);
  *beta = alpha > 0 ? -norm : norm;  // the sign that keeps alpha - beta free of cancellation
  const double inverse = 1.0 / (alpha - *beta);
  for (int64_t i = 1; i < m; ++i) x[i] *= inverse;
  x[0] = 1;
  return (*beta - alpha) / *beta;
}

double dot(const double* x, const double* y, int64_t m) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < m; ++j) s += x[j] * y[j];
  return s;
}

// Rows 1 .. m - 1 of the trailing block (m, m), upper part (columns >= row), row stride ld:
// applies the pending update block -= v w^T + w v^T, then forms y = block[1:, 1:] x (y and x
// (m - 1) indexed from row 1). The rows are cut into fixed chunks, each adding its column
// contributions into its own partial sum (partial: (chunks, m)); the partial sums are added up
// in chunk order, so the result does not depend on the thread count.
void update_and_multiply(double* block, int64_t ld, int64_t m, const double* v, const double* w, const double* x,
                         double* y, std::vector<double>& partial) {
  constexpr int64_t kChunkRows = 64;
  const int64_t chunks = (m - 1 + kChunkRows - 1) / kChunkRows;
  partial.resize(chunks * m);
#pragma omp parallel for schedule(dynamic, 1) if (m > 256)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = 1 + c * kChunkRows, r1 = std::min(m, r0 + kChunkRows);
    double* yc = partial.data() + c * m;  // (m) columns r0 .. m - 1 used
    std::fill(yc + r0, yc + m, 0.0);
    for (int64_t i = r0; i < r1; ++i) {
      double* row = block + i * ld;
      const double vi = v[i], wi = w[i], xi = x[i - 1];
      row[i] -= 2 * vi * wi;
      double s = row[i] * xi;  // the row's dot product with x; the diagonal counted once
#pragma omp simd reduction(+ : s)
      for (int64_t j = i + 1; j < m; ++j) {
        row[j] -= vi * w[j] + wi * v[j];
        s += row[j] * x[j - 1];
        yc[j] += row[j] * xi;  // the mirrored entry (j, i) times x_i
      }
      yc[i] += s;
    }
  }
  std::fill(y, y + m - 1, 0.0);
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = 1 + c * kChunkRows;
    const double* yc = partial.data() + c * m;
    for (int64_t j = r0; j < m; ++j) y[j - 1] += yc[j];
  }
}

// Reduces the symmetric (n, n) `a` (upper triangle read and overwritten, lower untouched) to
// tridiagonal form. On return row k holds v_k in columns k + 1 .. n - 1, tau[k] (n - 2) its scale.
// Step k finishes row k (the update of reflection k - 1), makes reflection k from it, and in one
// pass over the rest of the block applies the update of k - 1 and forms p = tau_k A v_k.
Tridiagonal reduce_to_tridiagonal(double* a, int64_t n, std::vector<double>& tau) {
  Tridiagonal t{std::vector<double>(n), std::vector<double>(n - 1)};
  tau.assign(std::max<int64_t>(n - 2, 0), 0.0);
  if (n == 1) {
    t.diag[0] = a[0];
    return t;
  }
  std::vector<double> zeros(n, 0.0), w(n, 0.0), p(n), partial;  // w, p: (m - 1) for the next block
  const double* v = zeros.data();  // v_{k-1} in the block's indexing (zero before the first step)
  for (int64_t k = 0;; ++k) {
    const int64_t m = n - k;        // size of the trailing block
    double* block = a + k * n + k;  // (m, m), row stride n, upper part
    // Row 0 of the block takes the update of reflection k - 1 and becomes row k of T.
    for (int64_t j = 0; j < m; ++j) block[j] -= v[0] * w[j] + w[0] * v[j];
    t.diag[k] = block[0];
    if (m == 2) {
      t.off[k] = block[1];
      t.diag[k + 1] = block[n + 1] - 2 * v[1] * w[1];
      return t;
    }
    double* next_v = block + 1;  // (m - 1) v_k, left in row k
    const double tau_k = tau[k] = make_reflection(next_v, m - 1, &t.off[k]);
    update_and_multiply(block, n, m, v, w.data(), next_v, p.data(), partial);
    // w = p - (tau / 2)(p . v) v with p = tau A v: A <- H A H = A - v w^T - w v^T.
    for (int64_t j = 0; j < m - 1; ++j) p[j] *= tau_k;
    const double half = 0.5 * tau_k * dot(p.data(), next_v, m - 1);
    for (int64_t j = 0; j < m - 1; ++j) w[j] = p[j] - half * next_v[j];
    v = next_v;
  }
}

// t (nb, nb), upper triangular, such that H_0 H_1 ... H_{nb-1} = I - V t V^T, where
// H_j = I - tau_j v_j v_j^T and V has the v_j as columns; vt (nb, len) holds them as rows. From
// [V v] [[t, -tau t V^T v], [0, tau]] [V v]^T: column j of t is -tau_j t[0:j, 0:j] (V^T v_j), with
// t[j][j] = tau_j.
std::vector<double> block_reflector_factor(const std::vector<double>& vt, const double* tau, int64_t nb, int64_t len) {
  std::vector<double> gram(nb * nb, 0.0);  // (nb, nb) V^T V, upper triangle
  matmul_add_f64(gram.data(), nb, row_major(vt.data(), len), transposed(vt.data(), len), nb, nb, len, Triangle::upper);
  std::vector<double> t(nb * nb, 0.0);  // (nb, nb)
  for (int64_t j = 0; j < nb; ++j) {
    for (int64_t i = 0; i < j; ++i) {
      double s = 0;
      for (int64_t l = i; l < j; ++l) s += t[i * nb + l] * gram[l * nb + j];
      t[i * nb + j] = -tau[j] * s;
    }
    t[j * nb + j] = tau[j];
  }
  return t;
}

// z (n, n) = Q^T from the reflections left in `a` by reduce_to_tridiagonal: z = I H_{n-3} ... H_0,
// applied from the right kBlock reflections at a time. For k0 .. k1 = k0 + nb - 1,
// H_{k0} ... H_{k1} = I - V t V^T, so z <- z H_{k1} ... H_{k0} = z - ((z V) t^T) V^T: two
// matrix products. Only rows and columns k0 + 1 .. n - 1 change: rows up to k0 are still e_i and
// the columns up to k0 of the other rows still zero, and every v_k is zero there.
void form_q_transpose(double* z, const double* a, const std::vector<double>& tau, int64_t n) {
  constexpr int64_t kBlock = 64;
  std::fill(z, z + n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) z[i * n + i] = 1;
  const int64_t reflections = n - 2;
  std::vector<double> vt, w;
  for (int64_t k0 = reflections > 0 ? (reflections - 1) / kBlock * kBlock : -1; k0 >= 0; k0 -= kBlock) {
    const int64_t nb = std::min(kBlock, reflections - k0), len = n - k0 - 1;
    vt.assign(nb * len, 0.0);  // (nb, len) row j: v_{k0+j} over indices k0 + 1 .. n - 1
    for (int64_t j = 0; j < nb; ++j) std::copy_n(a + (k0 + j) * n + k0 + j + 1, len - j, vt.data() + j * len + j);
    const std::vector<double> t = block_reflector_factor(vt, tau.data() + k0, nb, len);  // (nb, nb)
    const MatrixViewF64 block{z + (k0 + 1) * n + k0 + 1, n, 1};  // (len, len) rows and columns k0 + 1 ..
    w.assign(len * nb, 0.0);                                     // (len, nb) z V, then -(z V) t^T
    matmul_add_f64(w.data(), nb, block, transposed(vt.data(), len), len, nb, len);
    for (int64_t r = 0; r < len; ++r) {  // row r <- -(row r) t^T; t^T lower, so ascending j is in place
      double* wr = w.data() + r * nb;
      for (int64_t j = 0; j < nb; ++j) {
        double s = 0;
        for (int64_t l = j; l < nb; ++l) s += t[j * nb + l] * wr[l];
        wr[j] = -s;
      }
    }
    matmul_add_f64(z + (k0 + 1) * n + k0 + 1, n, row_major(w.data(), nb), row_major(vt.data(), len), len, len, nb);
  }
}

// A plane rotation of rows (row, row + 1): (x, y) <- (c x + s y, c y - s x).
struct Rotation {
  int64_t row;
  double c, s;
};

// Four doubles, one AVX2 register (GCC and Clang vector extension: the rotation kernel below keeps
// a strip of 16 columns of a row in registers at -O2 without intrinsics).
typedef double Vec4 __attribute__((vector_size(32)));
constexpr int64_t kStrip = 16;  // columns of z per strip
constexpr int kStripVecs = kStrip / 4;

void load4(Vec4& v, const double* p) { __builtin_memcpy(&v, p, sizeof v); }
void store4(double* p, const Vec4& v) { __builtin_memcpy(p, &v, sizeof v); }

// Applies `rotations` in order to the rows of strip (rows, kStrip). A run of
// rotations on rows k, k + 1, k + 2, ... (one QR sweep) carries the shared row in registers, so
// each rotation loads and stores one row.
void rotate_strip(double* strip, const std::vector<Rotation>& rotations) {
  size_t g = 0;
  while (g < rotations.size()) {
    int64_t row = rotations[g].row;
    Vec4 carry[kStripVecs];  // row `row`, rotated but not yet stored
#pragma GCC unroll 4
    for (int q = 0; q < kStripVecs; ++q) load4(carry[q], strip + row * kStrip + 4 * q);
    do {
      const double c = rotations[g].c, s = rotations[g].s;
      double* x = strip + row * kStrip;
      const double* y = x + kStrip;
#pragma GCC unroll 4
      for (int q = 0; q < kStripVecs; ++q) {
        Vec4 yq;
        load4(yq, y + 4 * q);
        store4(x + 4 * q, c * carry[q] + s * yq);
        carry[q] = c * yq - s * carry[q];
      }
      ++row, ++g;
    } while (g < rotations.size() && rotations[g].row == row);
#pragma GCC unroll 4
    for (int q = 0; q < kStripVecs; ++q) store4(strip + row * kStrip + 4 * q, carry[q]);
  }
}

// The same for the first `width` < kStrip columns of the strip, one column at a time.
void rotate_columns(double* strip, int64_t width, const std::vector<Rotation>& rotations) {
  for (const Rotation& g : rotations) {
    double* x = strip + g.row * kStrip;
    double* y = x + kStrip;
    for (int64_t j = 0; j < width; ++j) {
      const double xj = x[j], yj = y[j];
      x[j] = g.c * xj + g.s * yj;
      y[j] = g.c * yj - g.s * xj;
    }
  }
}

// Collects the rotations of the QR iteration and applies them, in order, to the rows of z
// (n, n) in batches; without z it only discards them.
class RotationBatch {
 public:
  RotationBatch(double* z, int64_t n) : z_(z), n_(n) {
    if (z_) pending_.reserve(capacity());
  }
  void add(int64_t row, double c, double s) {
    if (!z_) return;
    pending_.push_back({row, c, s});
    if (int64_t(pending_.size()) >= capacity()) flush();
  }
  // Each strip of columns (n, kStrip) of z is copied to a contiguous buffer (rows a power of two
  // apart would share cache sets), takes the whole batch while it is in L2 (256 KiB for
  // n = 2048), and is copied back; strips run in parallel.
  void flush() {
    if (pending_.empty()) return;
    const int64_t strips = (n_ + kStrip - 1) / kStrip;
#pragma omp parallel if (n_ > 128)
    {
      std::vector<double> strip(n_ * kStrip);  // (n, kStrip)
#pragma omp for schedule(static)
      for (int64_t b = 0; b < strips; ++b) {
        const int64_t j0 = b * kStrip, width = std::min(kStrip, n_ - j0);
        for (int64_t i = 0; i < n_; ++i) std::copy_n(z_ + i * n_ + j0, width, strip.data() + i * kStrip);
        if (width == kStrip)
          rotate_strip(strip.data(), pending_);
        else
          rotate_columns(strip.data(), width, pending_);
        for (int64_t i = 0; i < n_; ++i) std::copy_n(strip.data() + i * kStrip, width, z_ + i * n_ + j0);
      }
    }
    pending_.clear();
  }

 private:
  // Enough rotations that a pass over z is rare, few enough to stay in L3.
  int64_t capacity() const { return std::max<int64_t>(64 * n_, 4096); }
  double* z_;
  int64_t n_;
  std::vector<Rotation> pending_;
};

// Whether off-diagonal e is negligible beside its diagonal neighbours d0, d1.
bool negligible(double e, double d0, double d1) {
  const double eps = std::numeric_limits<double>::epsilon();
  return std::fabs(e) <= eps * (std::fabs(d0) + std::fabs(d1)) || std::fabs(e) < std::numeric_limits<double>::min();
}

// The eigenvalue of the trailing 2x2 of [low, high] nearer to T[high][high] (Wilkinson's shift).
double wilkinson_shift(const Tridiagonal& t, int64_t high) {
  const double half_gap = 0.5 * (t.diag[high - 1] - t.diag[high]);
  const double e = t.off[high - 1];
  const double root = std::hypot(half_gap, e);
  return t.diag[high] - e * (e / (half_gap + (half_gap >= 0 ? root : -root)));
}

// r = |(x, z)| without overflow or underflow; c = x / r, s = z / r (1, 0 when both are zero).
void plane_rotation(double x, double z, double* c, double* s, double* r) {
  const double squares = x * x + z * z;
  *r = squares > 1e-280 ? std::sqrt(squares) : std::hypot(x, z);
  if (*r == 0) {
    *c = 1, *s = 0;
    return;
  }
  *c = x / *r, *s = z / *r;
}

// One implicit QR step with Wilkinson's shift on the unreduced block [low, high]:
// T <- P T P^T, rotation by rotation, chasing the bulge (at (k - 1, k + 1)) down to the end.
void qr_sweep(Tridiagonal& t, int64_t low, int64_t high, RotationBatch& rotations) {
  double* d = t.diag.data();
  double* e = t.off.data();
  const double shift = wilkinson_shift(t, high);
  double x = d[low] - shift, z = e[low];  // the first column of T - shift I, then (e, bulge)
  for (int64_t k = low; k < high; ++k) {
    double c, s, r;
    plane_rotation(x, z, &c, &s, &r);
    if (k > low) e[k - 1] = r;
    const double dk = d[k], dk1 = d[k + 1], ek = e[k];
    d[k] = c * c * dk + 2 * c * s * ek + s * s * dk1;
    d[k + 1] = s * s * dk - 2 * c * s * ek + c * c * dk1;
    e[k] = c * s * (dk1 - dk) + (c * c - s * s) * ek;
    if (k + 1 < high) {
      z = s * e[k + 1];  // the new bulge at (k, k + 2)
      e[k + 1] *= c;
      x = e[k];
    }
    rotations.add(k, c, s);
  }
}

// Diagonalises t in place (t.diag becomes the eigenvalues, unsorted), passing every rotation to
// `rotations`. Deflates at the bottom of each unreduced block.
void tridiagonal_qr(Tridiagonal& t, RotationBatch& rotations) {
  const int64_t n = int64_t(t.diag.size());
  const int64_t max_sweeps = 30 * n;  // Wilkinson's shift converges in about 1-2 sweeps per eigenvalue
  int64_t sweeps = 0;
  for (int64_t high = n - 1; high > 0;) {
    int64_t low = high;
    while (low > 0 && !negligible(t.off[low - 1], t.diag[low - 1], t.diag[low])) --low;
    if (low > 0) t.off[low - 1] = 0;
    if (low == high) {
      --high;
      continue;
    }
    FPA_CHECK(++sweeps <= max_sweeps, "symmetric_eigen: the QR iteration did not converge after ", max_sweeps,
              " sweeps (n = ", n, ", ", high + 1, " eigenvalues left)");
    qr_sweep(t, low, high, rotations);
  }
  rotations.flush();
}

// Sorts the eigenvalues ascending, with the rows of `vectors` (n, n) when given.
void sort_ascending(SymmetricEigen& r) {
  std::vector<int64_t> order(r.n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return r.values[i] < r.values[j]; });
  std::vector<double> values(r.n);
  for (int64_t i = 0; i < r.n; ++i) values[i] = r.values[order[i]];
  r.values.swap(values);
  if (r.vectors.empty()) return;
  std::vector<double> vectors(r.n * r.n);  // (n, n)
#pragma omp parallel for schedule(static) if (r.n > 256)
  for (int64_t i = 0; i < r.n; ++i) std::copy_n(r.vectors.begin() + order[i] * r.n, r.n, vectors.begin() + i * r.n);
  r.vectors.swap(vectors);
}

}  // namespace

SymmetricEigen symmetric_eigen(std::vector<double> a, int64_t n, bool want_vectors) {
  FPA_CHECK(n >= 1, "symmetric_eigen: n must be at least 1, got ", n);
  FPA_CHECK(int64_t(a.size()) == n * n, "symmetric_eigen: a has ", a.size(), " entries, expected n * n = ", n * n,
            " (n = ", n, ")");
  const double scale = check_and_scale(a, n);
  std::vector<double> tau;  // (n - 2)
  Tridiagonal t = reduce_to_tridiagonal(a.data(), n, tau);

  SymmetricEigen r;
  r.n = n;
  if (want_vectors) {
    r.vectors.resize(n * n);  // (n, n)
    form_q_transpose(r.vectors.data(), a.data(), tau, n);
  }
  RotationBatch rotations(want_vectors ? r.vectors.data() : nullptr, n);
  tridiagonal_qr(t, rotations);
  r.values = std::move(t.diag);
  for (double& x : r.values) x *= scale;
  sort_ascending(r);
  return r;
}

}  // namespace fpa
