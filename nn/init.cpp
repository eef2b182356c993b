// init.cpp: parameter initialisations.
#include "nn/init.h"

#include <cmath>

namespace fpa::nn {

Tensor init_uniform(const Shape& shape, double bound, Philox* gen) {
  return rand(shape, DType::f32, Device::cpu, gen, -bound, bound);
}

Tensor init_kaiming_normal(const Shape& shape, int64_t fan_in, double gain, Philox* gen) {
  return randn(shape, DType::f32, Device::cpu, gen, 0.0, gain / std::sqrt(double(fan_in)));
}

}  // namespace fpa::nn
