// pictures.h: what a run folder shows, from a generator: a grid of samples, the
// painting-steps picture (per sample, a row of the T rank-1 updates above a row of the
// partial images, as in the paper's figures) as PNG and as an animated GIF of the painting,
// and a latent interpolation strip. Images are the generator's tanh output clamped to [0, 1]
// (the reference's convention).
#pragma once
#include <string>

#include "fpa/models.h"

namespace fpa {

// z (n, L). Writes a grid with ceil(sqrt(n)) tiles per row.
void write_samples(const GeneratorModel& g, const Tensor& z, const std::string& png_path);
// z (n, L): 2n rows of T tiles. gif_path may be "" (PNG only) and png_path too.
void write_painting_steps(const GeneratorModel& g, const Tensor& z, const std::string& png_path,
                          const std::string& gif_path);
// z (2, L): `count` images on the straight line from z[0] to z[1].
void write_interpolation(const GeneratorModel& g, const Tensor& z, int count, const std::string& png_path);

}  // namespace fpa
