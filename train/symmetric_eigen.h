// symmetric_eigen.h: eigenvalues and eigenvectors of a real symmetric matrix in float64, on the
// CPU (OpenMP), for the matrix square roots of FID (train/feature_distances.h). Householder
// reduction to tridiagonal form, then the implicit QR iteration with Wilkinson shifts; with
// vectors, the reflections and rotations are applied to the eigenvector matrix in cache-sized
// blocks. Eigenvalues are accurate to about 1e-16 times the matrix norm (absolutely, not
// relatively: a singular PSD matrix may give tiny negative eigenvalues).
#pragma once
#include <cstdint>
#include <vector>

namespace fpa {

struct SymmetricEigen {
  int64_t n = 0;
  std::vector<double> values;   // (n) ascending
  std::vector<double> vectors;  // (n, n) row i = the unit eigenvector of values[i]; empty without vectors
};

// A = vectors^T diag(values) vectors for the (n, n) row-major matrix `a`, of which only the upper
// triangle (column >= row) is read; the lower is taken as its mirror. Throws fpa::Error for
// n < 1, a size that is not n * n, a NaN or infinite entry, or (in theory only) an iteration
// that does not converge.
SymmetricEigen symmetric_eigen(std::vector<double> a, int64_t n, bool want_vectors);

}  // namespace fpa
