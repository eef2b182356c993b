// local_attention.cpp: the discriminator's local attention over kernel x kernel neighbourhoods
// as one op (backend primitives local_attention / local_attention_backward), and its composed
// twin. Shapes: q, k, v, out (P, d, H, W), P planes (batch x heads), N = H*W, J = kernel^2.
//
// The fused backward is a node of its own only for first-order gradients. When the gradient
// itself is being recorded (create_graph, as for the discriminator's gradient penalty), the
// backward is written with composed differentiable ops from q, k, v instead, so second-order
// gradients flow through it exactly as through the composed twin.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OP("local_attention", true, "local_attention");

namespace {

void check_args(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel) {
  check_defined(op, q, "queries");
  check_defined(op, k, "keys");
  check_defined(op, v, "values");
  FPA_CHECK(q.ndim() == 4, op, ": queries must be (P, d, H, W), got ", q.shape());
  FPA_CHECK(k.shape() == q.shape() && v.shape() == q.shape(), op, ": queries ", q.shape(), ", keys ", k.shape(),
            " and values ", v.shape(), " must have one shape");
  check_same_kind(op, q, k);
  check_same_kind(op, q, v);
  FPA_CHECK(kernel >= 1 && kernel % 2 == 1, op, ": kernel must be odd and positive, got ", kernel);
}

// (P, d, H, W) -> the neighbourhoods (P, d, J, N), zero outside the map.
Tensor neighbourhoods(const Tensor& x, int64_t kernel) {
  const Shape& s = x.shape();
  return reshape(unfold(x, kernel, 1, kernel / 2), {s[0], s[1], kernel * kernel, s[2] * s[3]});
}

// (P, d, J, N) -> (P, d, H, W): each neighbour's contribution summed back where it came from.
Tensor fold_neighbourhoods(const Tensor& x, const Shape& map, int64_t kernel) {
  return fold(reshape(x, {map[0], map[1] * kernel * kernel, map[2] * map[3]}), map[2], map[3], kernel, 1, kernel / 2);
}

// Gradients of local_attention_composed w.r.t. q, k, v, as differentiable ops.
std::vector<Tensor> composed_gradients(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                                       int64_t kernel) {
  const Shape& s = q.shape();
  const Shape col = {s[0], s[1], 1, s[2] * s[3]};
  Tensor K = neighbourhoods(k, kernel), V = neighbourhoods(v, kernel);  // (P, d, J, N)
  Tensor Q = reshape(q, col), G = reshape(dout, col);                    // (P, d, 1, N)
  Tensor attn = softmax(sum(mul(Q, K), {1}, true), 2);                   // (P, 1, J, N)
  Tensor dattn = sum(mul(G, V), {1}, true);                              // (P, 1, J, N)
  Tensor dsim = mul(attn, sub(dattn, sum(mul(attn, dattn), {2}, true)));
  return {reshape(sum(mul(dsim, K), {2}), s), fold_neighbourhoods(mul(dsim, Q), s, kernel),
          fold_neighbourhoods(mul(attn, G), s, kernel)};
}

}  // namespace

Tensor local_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel) {
  check_args("local_attention_composed", q, k, v, kernel);
  const Shape& s = q.shape();
  Tensor K = neighbourhoods(k, kernel), V = neighbourhoods(v, kernel);  // (P, d, J, N)
  Tensor Q = reshape(q, {s[0], s[1], 1, s[2] * s[3]});                   // (P, d, 1, N)
  Tensor attn = softmax(sum(mul(Q, K), {1}, true), 2);                   // (P, 1, J, N)
  return reshape(sum(mul(attn, V), {2}), s);
}

Tensor local_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel) {
  check_args("local_attention", q, k, v, kernel);
  const Backend& b = backend(q.device());
  if (!b.supports("local_attention") || !b.supports("local_attention_backward"))
    return local_attention_composed(q, k, v, kernel);  // a backend without the fused kernels
  const Shape& s = q.shape();
  const int64_t P = s[0], d = s[1], H = s[2], W = s[3];
  Tensor out = empty(s, q.dtype(), q.device());
  Tensor attn = empty({P, kernel * kernel, H * W}, q.dtype(), q.device());  // softmax weights, for the backward
  b.local_attention(q.dtype(), P, d, H, W, kernel, q.data(), k.data(), v.data(), out.data(),
                                      attn.data());
  return record("local_attention", out, {q, k, v},
                [=](const Tensor& dout, const Tensor&, const std::vector<bool>&) -> std::vector<Tensor> {
                  if (grad_enabled()) return composed_gradients(q, k, v, dout, kernel);
                  Tensor dq = empty(s, q.dtype(), q.device()), dk = empty(s, q.dtype(), q.device()),
                         dv = empty(s, q.dtype(), q.device());
                  backend(q.device()).local_attention_backward(q.dtype(), P, d, H, W, kernel, q.data(), k.data(),
                                                               v.data(), attn.data(), dout.data(), dq.data(),
                                                               dk.data(), dv.data());
                  return {dq, dk, dv};
                });
}

}  // namespace fpa
