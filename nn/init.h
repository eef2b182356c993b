// init.h: parameter initialisations of the reference models (PyTorch's defaults and
// Kaiming normal), drawn from a Philox (the default one when null).
#pragma once
#include "autograd/philox.h"
#include "autograd/tensor.h"

namespace fpa::nn {

// U(-bound, bound).
Tensor init_uniform(const Shape& shape, double bound, Philox* gen = nullptr);
// N(0, gain / sqrt(fan_in)), e.g. gain sqrt(2) for Kaiming normal with (leaky) relu, a = 0.
Tensor init_kaiming_normal(const Shape& shape, int64_t fan_in, double gain, Philox* gen = nullptr);

}  // namespace fpa::nn
