// local_attention.cpp: the discriminator's local attention over kernel x kernel neighbourhoods
// as one op (backend primitives local_attention / local_attention_backward), and its composed
// twin, softmax(neighbour_dot(q, k)) summed over neighbours of v by neighbour_sum
// (ops/neighbourhood.cpp). Shapes: q, k, v, out (P, d, H, W), P planes (batch x heads).
//
// The fused backward is a node of its own only for first-order gradients. When the gradient
// itself is being recorded (create_graph, as for the discriminator's gradient penalty), it
// differentiates the twin instead, so second-order gradients flow through the neighbourhood
// ops, which keep (P, J, H, W) weights, never unfolded (J times larger) keys and values.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("local_attention", {"local_attention", true});

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

}  // namespace

Tensor local_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel) {
  check_args("local_attention_composed", q, k, v, kernel);
  Tensor attn = softmax(neighbour_dot(q, k, kernel), 1);  // (P, J, H, W)
  return neighbour_sum(attn, v, kernel);
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
                [=](const Tensor& dout, const Tensor&, const std::vector<bool>& needs) -> std::vector<Tensor> {
                  if (grad_enabled()) {
                    auto twin = [kernel](const std::vector<Tensor>& x) {
                      return local_attention_composed(x[0], x[1], x[2], kernel);
                    };
                    return composed_twin_gradients(twin, {q, k, v}, dout, needs);
                  }
                  Tensor dq = empty(s, q.dtype(), q.device()), dk = empty(s, q.dtype(), q.device()),
                         dv = empty(s, q.dtype(), q.device());
                  backend(q.device()).local_attention_backward(q.dtype(), P, d, H, W, kernel, q.data(), k.data(),
                                                               v.data(), attn.data(), dout.data(), dq.data(),
                                                               dk.data(), dv.data());
                  return {dq, dk, dv};
                });
}

}  // namespace fpa
