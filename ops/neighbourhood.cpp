// neighbourhood.cpp: three differentiable ops over the kernel x kernel neighbourhoods of
// (P, d, H, W) maps (P planes, N = H*W positions n, J = kernel^2 neighbours at offsets off_j
// as unfold gathers them, zero outside the map), one backend primitive each. They are the
// pieces of the discriminator's local attention (ops/local_attention.cpp) that its second-order
// gradients, for the gradient penalty, are written with. The set is closed under
// differentiation, so a gradient of a gradient never materialises unfolded (J times larger)
// maps, only (P, J, H, W) weights:
//   neighbour_dot(a, b)     (P, J, H, W) [j, n] = sum_c a[c, n] b[c, n + off_j]
//                           da = neighbour_sum(g, b),  db = neighbour_sum(transpose(g), a)
//   neighbour_sum(w, x)     (P, d, H, W) [c, n] = sum_j w[j, n] x[c, n + off_j]
//                           dw = neighbour_dot(g, x),  dx = neighbour_sum(transpose(w), g)
//   neighbour_transpose(w)  (P, J, H, W) [j, n] = w[J-1-j, n + off_j]; its own adjoint.
// (transpose turns a sum over the positions that read m, sum_j w[j, m - off_j] x[m - off_j],
// into a neighbourhood sum at m: the mirrored neighbour J-1-j has offset -off_j.)
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("neighbourhood", {"neighbour_dot", true}, {"neighbour_sum", true}, {"neighbour_transpose", true});

namespace {

void check_kernel(const char* op, int64_t kernel) {
  FPA_CHECK(kernel >= 1 && kernel % 2 == 1, op, ": kernel must be odd and positive, got ", kernel);
}

void check_map(const char* op, const Tensor& x, const char* what) {
  check_defined(op, x, what);
  FPA_CHECK(x.ndim() == 4, op, ": ", what, " must be (P, d, H, W), got ", x.shape());
}

// w must be the (P, J, H, W) weights of maps shaped like `map`.
void check_weights(const char* op, const Tensor& w, const Shape& map, int64_t kernel) {
  check_defined(op, w, "weights");
  const Shape want = {map[0], kernel * kernel, map[2], map[3]};
  FPA_CHECK(w.shape() == want, op, ": weights must be ", want, " for maps ", map, " and kernel ", kernel, ", got ",
            w.shape());
}

}  // namespace

Tensor neighbour_dot(const Tensor& a, const Tensor& b, int64_t kernel) {
  check_kernel("neighbour_dot", kernel);
  check_map("neighbour_dot", a, "a");
  check_map("neighbour_dot", b, "b");
  FPA_CHECK(a.shape() == b.shape(), "neighbour_dot: maps ", a.shape(), " and ", b.shape(), " must have one shape");
  check_same_kind("neighbour_dot", a, b);
  const Shape& s = a.shape();
  Tensor out = empty({s[0], kernel * kernel, s[2], s[3]}, a.dtype(), a.device());
  backend(a.device()).neighbour_dot(a.dtype(), s[0], s[1], s[2], s[3], kernel, a.data(), b.data(), out.data());
  return record("neighbour_dot", out, {a, b},
                [a, b, kernel](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
                  return std::vector<Tensor>{
                      needs[0] ? neighbour_sum(g, b, kernel) : Tensor(),
                      needs[1] ? neighbour_sum(neighbour_transpose(g, kernel), a, kernel) : Tensor()};
                });
}

Tensor neighbour_sum(const Tensor& w, const Tensor& x, int64_t kernel) {
  check_kernel("neighbour_sum", kernel);
  check_map("neighbour_sum", x, "x");
  check_weights("neighbour_sum", w, x.shape(), kernel);
  check_same_kind("neighbour_sum", x, w);
  const Shape& s = x.shape();
  Tensor out = empty(s, x.dtype(), x.device());
  backend(x.device()).neighbour_sum(x.dtype(), s[0], s[1], s[2], s[3], kernel, w.data(), x.data(), out.data());
  return record("neighbour_sum", out, {w, x},
                [w, x, kernel](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
                  return std::vector<Tensor>{
                      needs[0] ? neighbour_dot(g, x, kernel) : Tensor(),
                      needs[1] ? neighbour_sum(neighbour_transpose(w, kernel), g, kernel) : Tensor()};
                });
}

Tensor neighbour_transpose(const Tensor& w, int64_t kernel) {
  check_kernel("neighbour_transpose", kernel);
  check_map("neighbour_transpose", w, "weights");
  check_weights("neighbour_transpose", w, w.shape(), kernel);
  const Shape& s = w.shape();
  Tensor out = empty(s, w.dtype(), w.device());
  backend(w.device()).neighbour_transpose(w.dtype(), s[0], s[2], s[3], kernel, w.data(), out.data());
  return record("neighbour_transpose", out, {w}, [kernel](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{neighbour_transpose(g, kernel)};
  });
}

}  // namespace fpa
