// pictures.cpp: sample grids, painting steps (PNG and GIF) and interpolation strips.
#include "train/pictures.h"

#include <cmath>

#include "autograd/error.h"
#include "data/gif.h"
#include "data/image_grid.h"
#include "data/image_io.h"
#include "ops/ops.h"

namespace fpa {

void write_samples(const GeneratorModel& g, const Tensor& z, const std::string& png_path) {
  NoGradGuard ng;
  Tensor images = g.forward(z);  // (n, C, S, S)
  int nrow = int(std::ceil(std::sqrt(double(z.dim(0)))));
  save_image_grid(png_path, images, nrow);
}

void write_painting_steps(const GeneratorModel& g, const Tensor& z, const std::string& png_path,
                          const std::string& gif_path) {
  NoGradGuard ng;
  FPA_CHECK(g.painter != nullptr, "painting steps: this generator has no fast weight painter");
  PaintingSteps steps = g.painter->forward_with_steps(z);  // each (T, n, C, S, S)
  const Shape& sh = steps.images.shape();
  int64_t T = sh[0], n = sh[1], C = sh[2], S = sh[3];
  // Rows: for each sample, its T updates then its T partial images: (n, 2, T, C, S, S).
  Tensor rows = concat({reshape(permute(steps.updates, {1, 0, 2, 3, 4}), {n, 1, T, C, S * S}),
                        reshape(permute(steps.images, {1, 0, 2, 3, 4}), {n, 1, T, C, S * S})},
                       1);
  Tensor tiles = reshape(rows, {n * 2 * T, C, S, S});
  if (!png_path.empty()) save_image_grid(png_path, tiles, int(T));
  if (!gif_path.empty()) {
    // Frame t: the n partial images after step t, side by side, then a pause on the last.
    std::vector<Image> frames;
    std::vector<int> delays;
    for (int64_t t = 0; t < T; ++t) {
      frames.push_back(make_image_grid(reshape(slice(steps.images, 0, t, t + 1), {n, C, S, S}), int(n)));
      delays.push_back(t + 1 == T ? 150 : 12);
    }
    write_gif(gif_path, frames, delays);
  }
}

void write_interpolation(const GeneratorModel& g, const Tensor& z, int count, const std::string& png_path) {
  NoGradGuard ng;
  FPA_CHECK(z.ndim() == 2 && z.dim(0) == 2, "interpolation: expects two latents (2, L), got ", z.shape());
  std::vector<double> alphas(count);
  for (int i = 0; i < count; ++i) alphas[i] = count > 1 ? double(i) / (count - 1) : 0.0;
  Tensor a = from_vector(alphas, {count, 1}, z.dtype(), z.device());
  Tensor z0 = slice(z, 0, 0, 1), z1 = slice(z, 0, 1, 2);
  Tensor path = add(mul(1.0 - a, z0), mul(a, z1));  // (count, L)
  save_image_grid(png_path, g.forward(path), count);
}

}  // namespace fpa
