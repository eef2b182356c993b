// diff_augment.h: DiffAugment as the reference trains with it (FPA_REFERENCE.md section 6),
// differentiable so the generator's gradient passes through it: with probability p per
// discriminator call, a horizontal flip of the whole batch with probability 1/2, then per
// sample a cutout (a zeroed square of half the side at a random centre, clipped at the
// borders) and a translation (by up to 1/8 of the side in each direction, zero fill).
//
// The choices are drawn on the host (draw_augment) and then given to the device as tensors
// (augment_inputs), so the augmentation itself (apply_augment) is device work only, and a
// CUDA graph can record it and replay it with each step's new choices uploaded into the same
// buffers: the flip and the whole augmentation are selected by 0/1 gates, the cutout is a 0/1
// mask, and a translation is a product with one-hot shift matrices, rows @ x @ cols. Every
// product and sum there has one nonzero term, so the result is exact: the same bits as
// flipping, masking and shifting directly (in float32 with TF32 GEMMs off, the default).
#pragma once
#include <vector>

#include "autograd/philox.h"
#include "autograd/tensor.h"

namespace fpa {

// One discriminator call's random choices, for B images of S x S.
struct AugmentChoice {
  bool apply = false;  // the augmentation happens at all (probability p)
  bool flip = false;   // the whole batch is flipped horizontally first
  std::vector<int64_t> centre_y, centre_x;  // (B) cutout centres
  std::vector<int64_t> shift_y, shift_x;    // (B) translations
};
// The reference's draws, in its order: two coins, then only if applied the centres and shifts.
AugmentChoice draw_augment(int64_t B, int64_t S, double prob, Philox& gen);

// A choice as tensors: apply and flip (1) gates; keep (B, 1, S, S), the cutout's 0/1 mask;
// rows (B, 1, S, S), rows[b][y][y'] = 1 where output row y shows input row y' = y - shift_y;
// cols (B, 1, S, S), cols[b][x'][x] = 1 where output column x shows input column x' = x - shift_x.
struct AugmentInputs {
  Tensor apply, flip, keep, rows, cols;
};
AugmentInputs augment_inputs(const AugmentChoice& c, int64_t B, int64_t S, DType dtype, Device device);
// Fresh tensors of the shapes augment_inputs gives, for a captured step's fixed inputs.
AugmentInputs empty_augment_inputs(int64_t B, int64_t S, DType dtype, Device device);

// images (B, C, S, S) augmented as `in` says; device work only (no host traffic).
Tensor apply_augment(const Tensor& images, const AugmentInputs& in);

// Eagerly: draws from `gen` (so runs and resumes are reproducible) and applies; unchanged when
// prob <= 0 or the first coin says no.
Tensor diff_augment(const Tensor& images, double prob, Philox& gen);

}  // namespace fpa
