// learning_rules.cpp: the painting, fused where the backend can, composed otherwise (and for
// the per-step trace, which needs every W_t).
#include "fpa/learning_rules.h"

#include "autograd/error.h"

namespace fpa {

Tensor paint(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0,
             PaintFrontEnd fe) {
  check_defined("paint", k, "keys");
  const Backend& b = backend(k.device());
  if (b.supports("paint_forward") && b.supports("paint_backward")) return paint_fused(rule, k, v, beta, w0, fe);
  return paint_composed(rule, k, v, beta, w0, fe);
}

PaintTrace paint_trace(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0,
                       PaintFrontEnd fe) {
  PaintTrace tr;
  paint_composed(rule, k, v, beta, w0, fe, &tr.updates, &tr.weights);
  return tr;
}

}  // namespace fpa
