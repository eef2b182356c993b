// image_io.h: 8-bit images in memory and on disk. Decodes PNG (libpng, every colour type and
// bit depth, tRNS, interlaced) and JPEG (libjpeg) to grey or RGB, encodes PNG, resizes and
// centre-crops, converts to greyscale (animated GIFs: gif.h), and defines ImageDataset, the
// (N, C, S, S) uint8 set every loader produces.
//
// Conventions: alpha is composited over WHITE (the image is seen on a white page); no gamma
// correction is applied (pixel values are used as stored, like PIL); grey = ITU-R 601 luma
// (0.299 R + 0.587 G + 0.114 B). Every failure is an fpa::Error naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fpa {

// One image, channels 1 (grey) or 3 (RGB), interleaved: pixels (H, W, C), row-major.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C)

  Image() = default;
  Image(int width, int height, int channels, uint8_t fill = 0);
  uint8_t& at(int y, int x, int c) { return pixels[(size_t(y) * width + x) * channels + c]; }
  uint8_t at(int y, int x, int c) const { return pixels[(size_t(y) * width + x) * channels + c]; }
};

// Same-sized square images stored planar per image, the layout of a (N, C, S, S) tensor.
struct ImageDataset {
  int64_t count = 0, channels = 0, size = 0;  // N, C, S
  std::vector<uint8_t> pixels;                // (N, C, S, S)
  std::vector<uint8_t> labels;                // (N) class ids, or empty when unlabelled
  std::string source;                         // where it came from, for messages

  int64_t image_bytes() const { return channels * size * size; }
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_bytes(); }
};

// `count` images of uniformly random pixels (Philox under `seed`): data for benchmarks and
// tests that read no files.
ImageDataset random_dataset(int64_t count, int64_t channels, int64_t size, uint64_t seed = 5);

// Decoding. `name` (usually the path) only appears in error messages. The format is taken
// from the signature bytes, not the file name. The result has 1 channel for grey sources
// (grey, grey+alpha, grey+tRNS) and 3 for colour ones (RGB, RGBA, palette, colour JPEG).
// Dimensions the file is too short to hold (PNG: more than deflate's 1032:1 allows; JPEG: more
// than 2048 pixels a byte) or over 2^28 pixels, and JPEGs of over 1000 scans, are refused
// before anything is allocated for them; a truncated JPEG is refused where its data ends.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name);
Image decode_png(const std::vector<uint8_t>& bytes, const std::string& name);
Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name);
Image read_image(const std::string& path);
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Encoding: 8-bit grey (1 channel) or RGB (3 channels) PNG.
std::vector<uint8_t> encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);
// Writes bytes to a file atomically (the old file or the whole new one: autograd/atomic_file.h),
// failing with the path and the system's reason.
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

// Channel conversions: grey = round(0.299 R + 0.587 G + 0.114 B); RGB from grey repeats it.
Image to_greyscale(const Image& image);
Image to_rgb(const Image& image);

// Resampling, separable per axis: area (box) averaging when shrinking an axis, bilinear with
// half-pixel centres (edges clamped) when enlarging it. The result is rounded to 8 bits.
Image resize(const Image& image, int width, int height);
// Shorter side to `size` (keeping the aspect ratio), then the centre size x size crop.
Image resize_and_center_crop(const Image& image, int size);
// Writes an image into one (C, S, S) slot of a dataset (the image is already S x S with C
// channels) and reads it back.
void image_to_planar(const Image& image, uint8_t* dst);  // dst: (C, H, W)
Image planar_to_image(const uint8_t* src, int channels, int height, int width);

}  // namespace fpa
