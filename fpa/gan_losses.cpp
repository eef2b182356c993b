// gan_losses.cpp: hinge losses, generator loss, gradient penalty, the D step's loss.
#include "fpa/gan_losses.h"

#include "autograd/error.h"
#include "ops/ops.h"

namespace fpa {

Tensor hinge_loss(const Tensor& real, const Tensor& fake) {
  FPA_CHECK(real.shape() == fake.shape(), "hinge_loss: real ", real.shape(), " and fake ", fake.shape(),
            " logits differ in shape");
  return add(hinge_real(real), hinge_fake(fake));
}

Tensor pooled_hinge_loss(const Tensor& real, const Tensor& fake) {
  FPA_CHECK(real.ndim() >= 1 && fake.ndim() >= 1, "pooled_hinge_loss: logits need a batch dimension, got ",
            real.shape(), " and ", fake.shape());
  Tensor s = add(sum(relu(add_scalar(real, 1.0))), sum(relu(add_scalar(neg(fake), 1.0))));
  return mul_scalar(s, 1.0 / double(real.dim(0) + fake.dim(0)));
}

Tensor hinge(HingeKind kind, const Tensor& real, const Tensor& fake) {
  return kind == HingeKind::pooled ? pooled_hinge_loss(real, fake) : hinge_loss(real, fake);
}

Tensor generator_loss(const DiscOutput& fake_out) { return add(mean(fake_out.logits), mean(fake_out.logits32)); }

Tensor penalty_input_grad(const Tensor& images, const DiscOutput& out) {
  FPA_CHECK(images.requires_grad(), "gradient_penalty: images ", images.shape(), " do not require grad");
  Tensor ones_main = ones(out.logits.shape(), out.logits.dtype(), out.logits.device());
  Tensor ones_32 = ones(out.logits32.shape(), out.logits32.dtype(), out.logits32.device());
  return grad({out.logits, out.logits32}, {images}, {ones_main, ones_32}, /*retain_graph=*/true,
              /*create_graph=*/true)[0];
}

Tensor penalty_from_input_grad(const Tensor& g, double weight) {
  Tensor norms = norm(reshape(g, {g.dim(0), -1}), {1});  // (B), over all C*S*S entries of a sample
  return mul_scalar(mean(square(add_scalar(norms, -1.0))), weight);
}

Tensor gradient_penalty(const Tensor& images, const DiscOutput& out, double weight) {
  return penalty_from_input_grad(penalty_input_grad(images, out), weight);
}

Tensor gradient_penalty(const Discriminator& D, const Tensor& real_images, double weight) {
  Tensor x = real_images.requires_grad() ? real_images : real_images.detach().requires_grad_(true);
  return gradient_penalty(x, D.forward(x, false), weight);
}

DStepForward d_forward(const Discriminator& D, const Tensor& fake, const Tensor& real, const Tensor& penalized,
                       double gp_weight) {
  DStepForward r;
  if (!penalized.defined()) {
    Discriminator::Pair pair = D.forward_pair(fake, real);
    r.fake = pair.fake, r.real = pair.real;
    return r;
  }
  r.real = D.forward(real, true);
  r.gp = gradient_penalty(penalized, r.real, gp_weight);
  r.fake = D.forward(fake, false);
  return r;
}

DiscLoss discriminator_loss(const Discriminator& D, const Tensor& real_images, const Tensor& fake_images,
                            bool apply_gp, HingeKind kind, double gp_weight) {
  Tensor real = real_images;
  if (apply_gp && !real.requires_grad()) real = real_images.detach().requires_grad_(true);
  const DStepForward f = d_forward(D, fake_images.detach(), real, apply_gp ? real : Tensor(), gp_weight);
  DiscLoss r;
  r.divergence = hinge(kind, f.real.logits, f.fake.logits);
  r.divergence32 = hinge(kind, f.real.logits32, f.fake.logits32);
  r.aux = f.real.aux_loss;
  r.without_gp = add(add(r.divergence, r.divergence32), r.aux);
  r.total = r.without_gp;
  if (apply_gp) {
    r.gp = f.gp;
    r.total = add(r.without_gp, r.gp);
  }
  return r;
}

}  // namespace fpa
