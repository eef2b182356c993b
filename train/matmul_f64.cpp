// matmul_f64.cpp: the blocked float64 product of matmul_f64.h. The classic three-level blocking:
// a (kKc, n) slice of B is packed once into kNr-wide column panels (shared), each thread packs
// a (kMc, kKc) block of A into kMr-high row panels (its own) and multiplies it by the B panels
// with a kMr x kNr register tile whose inner loop the compiler vectorises. Blocks of rows are
// shared out dynamically, since with Triangle::upper the top rows have the most work.
#include "train/matmul_f64.h"

#include <algorithm>
#include <vector>

#include "autograd/error.h"

namespace fpa {
namespace {

constexpr int kMr = 6;             // register tile rows
constexpr int kNr = 8;             // register tile columns (one AVX-512 or two AVX2 vectors)
constexpr int64_t kKc = 256;       // depth of a packed slice: a B panel (kKc x kNr, 16 KiB) stays in L1
constexpr int64_t kMc = 16 * kMr;  // rows of a packed A block (kMc x kKc, 192 KiB, in L2)
// Multiply-adds below which threads cost more than they save.
constexpr double kParallelWork = 1 << 21;

// Packs rows [i0, i0 + mc) x depth [p0, p0 + kc) of A into panels of kMr rows, each stored depth
// by depth: out[(panel * kc + p) * kMr + r]; rows past the end are zeros.
void pack_a(double* out, MatrixViewF64 a, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
  for (int64_t panel = 0; panel * kMr < mc; ++panel) {
    double* dst = out + panel * kc * kMr;
    const int64_t rows = std::min<int64_t>(kMr, mc - panel * kMr);
    for (int64_t r = 0; r < kMr; ++r) {
      if (r >= rows) {
        for (int64_t p = 0; p < kc; ++p) dst[p * kMr + r] = 0;
        continue;
      }
      const double* src = a.data + (i0 + panel * kMr + r) * a.row_stride + p0 * a.col_stride;
      for (int64_t p = 0; p < kc; ++p) dst[p * kMr + r] = src[p * a.col_stride];
    }
  }
}

// Packs depth [p0, p0 + kc) x all n columns of B into panels of kNr columns:
// out[(panel * kc + p) * kNr + c]; columns past the end are zeros; panels in parallel if asked.
void pack_b(double* out, MatrixViewF64 b, int64_t p0, int64_t kc, int64_t n, bool parallel) {
  const int64_t panels = (n + kNr - 1) / kNr;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t panel = 0; panel < panels; ++panel) {
    double* dst = out + panel * kc * kNr;
    const int64_t cols = std::min<int64_t>(kNr, n - panel * kNr);
    for (int64_t p = 0; p < kc; ++p) {
      const double* src = b.data + (p0 + p) * b.row_stride + panel * kNr * b.col_stride;
      for (int64_t c = 0; c < kNr; ++c) dst[p * kNr + c] = c < cols ? src[c * b.col_stride] : 0.0;
    }
  }
}

// Four doubles, one AVX2 register (half an AVX-512 one); GCC and Clang vector extension, so the
// tile stays in registers at -O2 without intrinsics.
typedef double Vec4 __attribute__((vector_size(32)));
constexpr int kVecsPerRow = kNr / 4;

void load4(Vec4& v, const double* p) { __builtin_memcpy(&v, p, sizeof v); }

// c (rows, cols <= kMr, kNr), row stride ldc, += one packed A panel times one packed B panel.
void register_tile(double* c, int64_t ldc, const double* ap, const double* bp, int64_t kc, int64_t rows, int64_t cols) {
  Vec4 acc[kMr][kVecsPerRow] = {};
  for (int64_t p = 0; p < kc; ++p) {
    Vec4 bv[kVecsPerRow];
#pragma GCC unroll 4
    for (int v = 0; v < kVecsPerRow; ++v) load4(bv[v], bp + p * kNr + 4 * v);
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) {
      const double ar = ap[p * kMr + r];
#pragma GCC unroll 4
      for (int v = 0; v < kVecsPerRow; ++v) acc[r][v] += ar * bv[v];
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    double tile_row[kNr];
    __builtin_memcpy(tile_row, acc[r], sizeof tile_row);
    for (int64_t q = 0; q < cols; ++q) c[r * ldc + q] += tile_row[q];
  }
}

// C rows [i0, i0 + mc) x columns [j0, j0 + nc) += packed A block x packed B slice. With
// `upper`, tiles lying wholly below the diagonal (last column < first row) are skipped.
void multiply_block(double* c, int64_t ldc, const double* ap, const double* bp, int64_t i0, int64_t mc, int64_t j0,
                    int64_t nc, int64_t kc, bool upper) {
  for (int64_t jp = 0; jp * kNr < nc; ++jp) {
    const int64_t col = j0 + jp * kNr, cols = std::min<int64_t>(kNr, nc - jp * kNr);
    for (int64_t ip = 0; ip * kMr < mc; ++ip) {
      const int64_t row = i0 + ip * kMr, rows = std::min<int64_t>(kMr, mc - ip * kMr);
      if (upper && col + cols - 1 < row) break;  // this and every lower tile of the column
      register_tile(c + row * ldc + col, ldc, ap + ip * kc * kMr, bp + jp * kc * kNr, kc, rows, cols);
    }
  }
}

}  // namespace

void matmul_add_f64(double* c, int64_t ldc, MatrixViewF64 a, MatrixViewF64 b, int64_t m, int64_t n, int64_t k,
                    Triangle part) {
  const bool upper = part == Triangle::upper;
  FPA_CHECK(!upper || m == n, "matmul_add_f64: Triangle::upper needs a square C, got ", m, "x", n);
  if (m <= 0 || n <= 0 || k <= 0) return;
  const bool parallel = double(m) * double(n) * double(k) >= kParallelWork;
  const int64_t row_blocks = (m + kMc - 1) / kMc;
  std::vector<double> packed_b(((n + kNr - 1) / kNr) * kNr * std::min(k, kKc));  // (n/kNr, kKc, kNr)
  for (int64_t p0 = 0; p0 < k; p0 += kKc) {
    const int64_t kc = std::min(kKc, k - p0);
    pack_b(packed_b.data(), b, p0, kc, n, parallel);
#pragma omp parallel if (parallel)
    {
      std::vector<double> packed_a(kMc * kc);  // (kMc/kMr, kc, kMr)
#pragma omp for schedule(dynamic, 1)
      for (int64_t block = 0; block < row_blocks; ++block) {
        const int64_t i0 = block * kMc, mc = std::min(kMc, m - i0);
        // With `upper`, columns left of the block's first row are below the diagonal: skip
        // whole B panels there.
        const int64_t j0 = upper ? (i0 / kNr) * kNr : 0;
        if (j0 >= n) continue;
        pack_a(packed_a.data(), a, i0, mc, p0, kc);
        multiply_block(c, ldc, packed_a.data(), packed_b.data() + (j0 / kNr) * kc * kNr, i0, mc, j0, n - j0, kc, upper);
      }
    }
  }
}

void mirror_upper_f64(double* c, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 256)
  for (int64_t i = 1; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) c[i * n + j] = c[j * n + i];
}

}  // namespace fpa
