// fixture_checks.h: whole models against the PyTorch reference fixtures (tests/fixtures/*.safetensors,
// written by tools/reference/make_fixtures.py), on any device: the FastWeightPainter generators,
// the U-Net generator, the discriminator with its gradient penalty, and the GAN losses. Each
// check builds the model from the file's metadata, loads the stored weights, moves the model and
// the inputs to `device`, runs them in `dtype`, and compares every output and gradient, brought
// back to the host, with the stored reference, at the tolerance of `dtype` (fixture_checks.cpp
// says which and why; the same on every device). A missing fixture skips the calling test.
// Used by the CPU tests (tests/test_fixtures_*.cpp) and the CUDA suite (tests/cuda/test_cuda_fixtures.cpp).
#pragma once
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace fpa::test {

// tests/fixtures/gen_*.safetensors but gen_unet (the U-Net's own check), sorted.
std::vector<std::string> generator_fixtures();

// Every generator_fixtures() file: out.paint (W_T), out.images, the painting-steps view
// (out.steps_updates / out.steps_images, when stored) and the gradients of
// sum(out.images * in.out_weight) w.r.t. in.z and every parameter. Skips when there is none.
void check_generator_fixtures(Device device, DType dtype);

// gen_unet: the painting W_T, the U-Net output, the images and the gradients as above.
void check_unet_fixture(Device device, DType dtype);

// `name`.safetensors (disc32_grey, disc64_rgb, disc32_out5): logits, logits32, aux loss, the
// gradients of a weighted sum of them, the gradient penalty and its parameter gradients.
void check_discriminator_fixture(const std::string& name, Device device, DType dtype);

// losses.safetensors: every hinge variant, the generator losses and their input gradients.
void check_gan_losses_fixture(Device device, DType dtype);

}  // namespace fpa::test
