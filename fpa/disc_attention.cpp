// disc_attention.cpp: the discriminator's LinearAttention (both branches) and the small
// containers around it. Shapes: B batch, h heads, d = dim_head, N = X*Y positions.
#include "fpa/disc_attention.h"

#include <cmath>

#include "autograd/error.h"
#include "ops/backend/backend.h"

namespace fpa::disc {

namespace {
CheckpointAttention g_checkpoint_attention = CheckpointAttention::automatic;
}  // namespace

CheckpointAttentionScope::CheckpointAttentionScope(CheckpointAttention mode) : previous_(g_checkpoint_attention) {
  g_checkpoint_attention = mode;
}

CheckpointAttentionScope::~CheckpointAttentionScope() { g_checkpoint_attention = previous_; }

bool checkpoints_attention(Device device) {
  if (g_checkpoint_attention == CheckpointAttention::automatic) return backend(device).memory_bound;
  return g_checkpoint_attention == CheckpointAttention::always;
}

Tensor Sequential::forward(const Tensor& x) const {
  Tensor y = x;
  for (const Step& s : steps_) y = s(y);
  return y;
}

SumBranches::SumBranches(std::vector<std::shared_ptr<Sequential>> branches) {
  auto list = std::make_shared<nn::ModuleList>();
  for (auto& b : branches) branches_.push_back(list->push_back(b));
  register_module("branches", list);
}

Tensor SumBranches::forward(const Tensor& x) const {
  Tensor y = branches_[0]->forward(x);
  for (size_t i = 1; i < branches_.size(); ++i) y = add(y, branches_[i]->forward(x));
  return y;
}

DepthWiseConv2d::DepthWiseConv2d(int64_t dim_in, int64_t dim_out, int64_t kernel, int64_t padding, bool bias) {
  net = register_module("net", std::make_shared<Sequential>());
  Conv2dOptions dw;
  dw.padding = padding, dw.groups = dim_in;
  net->add(std::make_shared<nn::Conv2d>(dim_in, dim_in, kernel, dw, bias));
  net->add(std::make_shared<nn::Conv2d>(dim_in, dim_out, 1, Conv2dOptions{}, bias));
}

LinearAttention::LinearAttention(int64_t dim_, int64_t dim_head_, int64_t heads_)
    : dim(dim_), dim_head(dim_head_), heads(heads_) {
  FPA_CHECK(dim > 0 && dim_head > 0 && heads > 0, "LinearAttention: dim ", dim, ", dim_head ", dim_head,
            ", heads ", heads, " must be positive");
  const int64_t inner = dim_head * heads;
  to_lin_q = register_module("to_lin_q", std::make_shared<nn::Conv2d>(dim, inner, 1, Conv2dOptions{}, false));
  to_lin_kv = register_module("to_lin_kv", std::make_shared<DepthWiseConv2d>(dim, 2 * inner, 3, 1, false));
  to_q = register_module("to_q", std::make_shared<nn::Conv2d>(dim, inner, 1, Conv2dOptions{}, false));
  to_kv = register_module("to_kv", std::make_shared<nn::Conv2d>(dim, 2 * inner, 1, Conv2dOptions{}, false));
  to_out = register_module("to_out", std::make_shared<nn::Conv2d>(2 * inner, dim, 1, Conv2dOptions{}, true));
}

Tensor LinearAttention::linear_branch(const Tensor& fmap) const {
  const int64_t B = fmap.dim(0), X = fmap.dim(2), Y = fmap.dim(3), N = X * Y;
  const double scale = 1.0 / std::sqrt(double(dim_head));
  // Channel h*d + c of a (B, h*d, X, Y) map is feature c of head h: view it as (B, h, d, N).
  auto heads_view = [&](const Tensor& t) { return reshape(t, {B, heads, dim_head, N}); };
  Tensor q = heads_view(to_lin_q->forward(fmap));
  std::vector<Tensor> kv = chunk(to_lin_kv->forward(fmap), 2, 1);
  Tensor k = heads_view(kv[0]), v = heads_view(kv[1]);
  q = softmax(q, 2);  // over the head's features
  k = softmax(k, 3);  // over positions
  // The reference scales q; the scale goes on the small context instead, which keeps one
  // (B, h, d, N) map fewer (the same numbers where the scale is a power of two, as 64^-0.5).
  Tensor context = mul_scalar(matmul_t(k, v, false, true), scale);  // (B, h, d, e) = s sum_n k[d, n] v[e, n]
  Tensor out = matmul_t(context, q, true, false);                   // (B, h, e, N) = sum_d context[d, e] q[d, n]
  return gelu(reshape(out, {B, heads * dim_head, X, Y}));
}

Tensor LinearAttention::local_branch(const Tensor& fmap) const {
  const int64_t B = fmap.dim(0), X = fmap.dim(2), Y = fmap.dim(3), BH = B * heads;
  const double scale = 1.0 / std::sqrt(double(dim_head));
  // (B, h*d, X, Y) -> (B*h, d, X, Y): channel h*d + c is feature c of head h.
  auto per_head = [&](const Tensor& t) { return reshape(t, {BH, dim_head, X, Y}); };
  std::vector<Tensor> kv = chunk(to_kv->forward(fmap), 2, 1);
  Tensor q = mul_scalar(per_head(to_q->forward(fmap)), scale);
  // Each position attends over its 3x3 neighbourhood (zero padding), fused (ops/local_attention.cpp).
  Tensor out = local_attention(q, per_head(kv[0]), per_head(kv[1]), 3);  // (BH, d, X, Y)
  return reshape(out, {B, heads * dim_head, X, Y});
}

Tensor LinearAttention::forward(const Tensor& fmap) const {
  FPA_CHECK(fmap.ndim() == 4 && fmap.dim(1) == dim, "LinearAttention(", dim, "): input must be (B, ", dim,
            ", X, Y), got ", fmap.shape());
  if (!checkpoints_attention(fmap.device()) || !recomputing_for_recorded_gradient())
    return to_out->forward(concat({linear_branch(fmap), local_branch(fmap)}, 1));
  // Rebuilt to record the block's gradient, which the penalty's second order differentiates:
  // each branch checkpointed, so its forward and backward maps (about fifteen of 512 or 1024
  // channels) are rebuilt one branch at a time: less memory at the step's peak for more
  // launches.
  auto checkpointed = [&](Tensor (LinearAttention::*branch)(const Tensor&) const,
                          std::initializer_list<const nn::Module*> reads) {
    std::vector<Tensor*> slots;
    for (const nn::Module* m : reads)
      for (Tensor* p : m->parameter_slots()) slots.push_back(p);
    return checkpoint([this, branch](const std::vector<Tensor>& in) { return (this->*branch)(in[0]); }, {fmap},
                      slots);
  };
  Tensor linear = checkpointed(&LinearAttention::linear_branch, {to_lin_q, to_lin_kv});
  Tensor local = checkpointed(&LinearAttention::local_branch, {to_q, to_kv});
  return to_out->forward(concat({linear, local}, 1));
}

}  // namespace fpa::disc
