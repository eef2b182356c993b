// loss.cpp: mean squared error and the two relu-based hinge pieces of the GAN losses
// (FPA_REFERENCE.md section 6: the discriminator pushes real logits negative).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("loss", {"mse_loss", true}, {"hinge_real", true}, {"hinge_fake", true});

Tensor mse_loss(const Tensor& input, const Tensor& target) {
  check_same_kind("mse_loss", input, target);
  FPA_CHECK(input.shape() == target.shape(), "mse_loss: input ", input.shape(), " and target ", target.shape(),
            " differ (no implicit broadcast)");
  return mean(square(sub(input, target)));
}

Tensor hinge_real(const Tensor& logits) { return mean(relu(add_scalar(logits, 1.0))); }
Tensor hinge_fake(const Tensor& logits) { return mean(relu(add_scalar(neg(logits), 1.0))); }

}  // namespace fpa
