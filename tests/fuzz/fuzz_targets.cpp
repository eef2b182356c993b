// fuzz_targets.cpp: the fuzz targets of fuzz_targets.h.
#include "tests/fuzz/fuzz_targets.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "data/fashion_mnist.h"
#include "data/gif.h"
#include "data/image_io.h"
#include "nn/safetensors.h"
#include "tests/fuzz/gif_decode.h"

namespace fpa::fuzz {
namespace {

using Bytes = std::vector<uint8_t>;

// A broken invariant: an exception that is not an fpa::Error, so it escapes as a finding.
void require(bool ok, const char* what) {
  if (!ok) throw std::logic_error(std::string("fuzz target: ") + what);
}

std::string refusal;

// Runs a reader on the bytes; a refusal (fpa::Error) is a fine outcome.
template <typename F>
int refused_or_loaded(F&& read) {
  refusal.clear();
  try {
    read();
  } catch (const Error& e) {
    refusal = e.what();
  }
  return 0;
}

void check_image(const Image& im) {
  require(im.width > 0 && im.height > 0 && (im.channels == 1 || im.channels == 3) &&
              im.pixels.size() == size_t(im.width) * im.height * im.channels,
          "a decoded image's size, channels and pixel count disagree");
}

}  // namespace

const std::string& last_refusal() { return refusal; }

int fuzz_safetensors(const uint8_t* data, size_t size) {
  return refused_or_loaded([&] {
    for (const auto& [name, t] : nn::parse_safetensors(Bytes(data, data + size), "fuzz.safetensors").tensors)
      t.to(DType::f64);  // used as a state dict load that converts would
  });
}

int fuzz_png(const uint8_t* data, size_t size) {
  // Each whole chunk's CRC is rewritten first, so that mutations reach past libpng's checksums.
  Bytes png(data, data + size);
  for (size_t p = 8; p + 12 <= png.size();) {
    const uint32_t len = uint32_t(png[p]) << 24 | png[p + 1] << 16 | png[p + 2] << 8 | png[p + 3];
    if (len > png.size() - p - 12) break;
    const uint32_t crc = uint32_t(crc32(0, &png[p + 4], len + 4));
    for (int i = 0; i < 4; ++i) png[p + 8 + len + i] = uint8_t(crc >> (24 - 8 * i));
    p += 12 + len;
  }
  return refused_or_loaded([&] { check_image(decode_png(png, "fuzz.png")); });
}

int fuzz_jpeg(const uint8_t* data, size_t size) {
  return refused_or_loaded([&] { check_image(decode_jpeg(Bytes(data, data + size), "fuzz.jpg")); });
}

int fuzz_fashion_mnist(const uint8_t* data, size_t size) {
  uint32_t split = 0;
  if (size >= 4) std::memcpy(&split, data, 4);
  const size_t body = size >= 4 ? size - 4 : 0, n = std::min<size_t>(split, body);
  const uint8_t* images = data + (size - body);
  return refused_or_loaded([&] {
    ImageDataset d = decode_fashion_mnist(Bytes(images, images + n), Bytes(images + n, images + body),
                                          "fuzz-images.gz", "fuzz-labels.gz");
    require(d.count > 0 && d.pixels.size() == size_t(d.count) * 32 * 32 && d.labels.size() == size_t(d.count),
            "a decoded Fashion-MNIST split's count, pixels and labels disagree");
  });
}

// The GIF encoder's input, from the bytes: [0] width & 127, [1] height & 127 (0 is refused);
// [2] bits 0-1: frames - 1, bit 7: a last frame after the first one pixel wider (refused);
// [3] bits 0-1: channels (only 1 and 3 are valid), bit 2: pixels from a generator seeded by
// the rest rather than the rest itself (noise fills the LZW table); [4] % 3: one delay, one per
// frame, or one too many (refused); then each delay, int16 little-endian times 3 (outside
// 0..65535 is refused); the rest: pixel bytes, repeated as needed.
int fuzz_gif(const uint8_t* data, size_t size) {
  auto at = [&](size_t i) { return i < size ? data[i] : uint8_t(0); };
  const int W = at(0) & 127, H = at(1) & 127, nframes = 1 + (at(2) & 3), channels = at(3) & 3;
  const int ndelays = at(4) % 3 == 0 ? 1 : nframes + at(4) % 3 - 1;
  std::vector<int> delays;
  size_t p = 5;
  for (int i = 0; i < ndelays; ++i, p += 2) delays.push_back(3 * int16_t(at(p) | at(p + 1) << 8));
  const size_t rest = size > p ? size - p : 0;
  uint32_t seed = 1;
  for (size_t i = 0; i < rest; ++i) seed = seed * 31 + data[p + i];
  std::vector<Image> frames;
  for (int f = 0; f < nframes; ++f) {
    Image im(W + (f > 0 && f == nframes - 1 && at(2) & 0x80), H, channels);
    for (size_t i = 0; i < im.pixels.size(); ++i, ++seed)
      im.pixels[i] = at(3) & 4 ? uint8_t((seed * 2654435761u) >> 24) : rest ? data[p + i % rest] : 0;
    frames.push_back(std::move(im));
  }
  std::vector<uint8_t> gif;
  refused_or_loaded([&] { gif = encode_gif(frames, delays); });
  if (!refusal.empty()) return 0;
  const test::ParsedGif g = test::parse_gif(gif);
  require(g.width == W && g.height == H && g.loops_forever, "the GIF's size or loop differs");
  require(g.frames.size() == frames.size() && g.delays.size() == frames.size(),
          "the GIF's frame count differs");
  bool grey = true;
  for (const Image& im : frames)
    for (size_t i = 0; grey && im.channels == 3 && i < im.pixels.size(); i += 3)
      grey = im.pixels[i] == im.pixels[i + 1] && im.pixels[i] == im.pixels[i + 2];
  for (size_t f = 0; f < frames.size(); ++f) {
    require(g.delays[f] == delays[delays.size() == 1 ? 0 : f], "a frame's delay differs");
    require(g.frames[f].size() == size_t(W) * H, "a frame's pixel count differs");
    const Image& im = frames[f];
    for (size_t i = 0; i < g.frames[f].size(); ++i) {
      const uint8_t* want = &im.pixels[i * im.channels];
      const uint8_t* got = &g.palette.at(g.frames[f][i] * 3);
      int d2 = 0;
      for (int c = 0; c < 3; ++c) {
        const int d = got[c] - want[im.channels == 3 ? c : 0];
        d2 += d * d;
      }
      // Grey frames: the exact level; colour: within half a step (51, 42.5, 51) of the cube.
      require(grey ? d2 == 0 : d2 <= 26 * 26 + 22 * 22 + 26 * 26, "a pixel decodes to a wrong colour");
    }
  }
  return 0;
}

}  // namespace fpa::fuzz
