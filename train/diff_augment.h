// diff_augment.h: DiffAugment as the reference trains with it (FPA_REFERENCE.md section 6),
// differentiable so the generator's gradient passes through it: with probability p per
// discriminator call, a horizontal flip of the whole batch with probability 1/2, then per
// sample a cutout (a zeroed square of half the side at a random centre, clipped at the
// borders) and a translation (by up to 1/8 of the side in each direction, zero fill).
#pragma once
#include "autograd/generator.h"
#include "autograd/tensor.h"

namespace fpa {

// images (B, C, S, S); draws its randomness from `gen` (so runs and resumes are reproducible).
Tensor diff_augment(const Tensor& images, double prob, Generator& gen);

// The pieces, with the random choices given (tests use them directly).
Tensor cutout(const Tensor& images, const std::vector<int64_t>& centre_y, const std::vector<int64_t>& centre_x);
Tensor translate(const Tensor& images, const std::vector<int64_t>& shift_y, const std::vector<int64_t>& shift_x);

}  // namespace fpa
