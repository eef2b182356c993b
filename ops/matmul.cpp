// matmul.cpp: (batched) matrix products on the backend's strided-batched GEMM, and linear.
// Leading batch dims broadcast; a transposed operand is read in place, never copied.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("matmul", {"matmul", true}, {"matmul_t", true}, {"linear", true});

// Leading (batch) part of a shape of rank >= 2.
static Shape batch_of(const Shape& s) {
  Shape b;
  b.ndim = s.ndim - 2;
  for (int i = 0; i < b.ndim; ++i) b[i] = s[i];
  return b;
}

static Shape with_batch(const Shape& batch, int64_t r, int64_t c) {
  Shape s = batch;
  s.ndim = batch.ndim + 2;
  s[batch.ndim] = r, s[batch.ndim + 1] = c;
  return s;
}

Tensor matmul_t(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_same_kind("matmul", a, b);
  FPA_CHECK(a.ndim() >= 2 && b.ndim() >= 2, "matmul: operands need at least 2 dims, got ", a.shape(), " and ",
            b.shape());
  int64_t M = ta ? a.dim(-1) : a.dim(-2), K = ta ? a.dim(-2) : a.dim(-1);
  int64_t Kb = tb ? b.dim(-1) : b.dim(-2), N = tb ? b.dim(-2) : b.dim(-1);
  FPA_CHECK(K == Kb, "matmul: inner dimensions differ: ", a.shape(), (ta ? "^T" : ""), " @ ", b.shape(),
            (tb ? "^T" : ""));
  Shape batch = broadcast_shapes(batch_of(a.shape()), batch_of(b.shape()), "matmul");
  int64_t nb = batch.numel();
  // An operand whose batch is neither full nor a single matrix is materialised at full batch.
  auto prepared = [&](const Tensor& t) {
    int64_t tb_n = batch_of(t.shape()).numel();
    if (tb_n == nb || tb_n == 1) return t;
    NoGradGuard ng;
    return expand(t, with_batch(batch, t.dim(-2), t.dim(-1)));
  };
  Tensor A = prepared(a), B = prepared(b);
  Tensor y = empty(with_batch(batch, M, N), a.dtype(), a.device());
  int64_t sa = batch_of(A.shape()).numel() == 1 ? 0 : M * K, sb = batch_of(B.shape()).numel() == 1 ? 0 : K * N;
  backend(a.device()).gemm(a.dtype(), ta, tb, M, N, K, 1.0, A.data(), A.dim(-1), sa, B.data(), B.dim(-1), sb,
                           0.0, y.data(), N, M * N, nb);
  return record("matmul_t", y, {a, b}, [a, b, ta, tb](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    Tensor ga, gb;
    if (needs[0]) ga = ta ? (tb ? matmul_t(b, g, true, true) : matmul_t(b, g, false, true))
                          : (tb ? matmul_t(g, b, false, false) : matmul_t(g, b, false, true));
    if (needs[1]) gb = tb ? (ta ? matmul_t(g, a, true, true) : matmul_t(g, a, true, false))
                          : (ta ? matmul_t(a, g, false, false) : matmul_t(a, g, true, false));
    return std::vector<Tensor>{ga.defined() ? sum_to(ga, a.shape()) : ga,
                               gb.defined() ? sum_to(gb, b.shape()) : gb};
  });
}

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul_t(a, b, false, false); }

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_same_kind("linear", x, w);
  FPA_CHECK(w.ndim() == 2 && x.ndim() >= 1 && x.dim(-1) == w.dim(1), "linear: input ", x.shape(),
            " does not match weight ", w.shape(), " (out, in)");
  Shape out_shape = x.shape();
  out_shape[out_shape.ndim - 1] = w.dim(0);
  Tensor y = matmul_t(reshape(x, {-1, x.dim(-1)}), w, false, true);  // (rows, out)
  if (bias.defined()) {
    check_same_kind("linear", x, bias);
    FPA_CHECK(bias.ndim() == 1 && bias.dim(0) == w.dim(0), "linear: bias ", bias.shape(),
              " does not match weight ", w.shape());
    y = add(y, bias);
  }
  return reshape(y, out_shape);
}

}  // namespace fpa
