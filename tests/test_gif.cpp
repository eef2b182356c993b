// test_gif.cpp: the animated GIF writer, read back by the test GIF reader
// (tests/fuzz/gif_decode.h, shared with the GIF fuzz target): size, palette, per-frame delays,
// the loop extension, and frames of noise that make the LZW table fill and reset.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "data/gif.h"
#include "tests/fuzz/gif_decode.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using Ints = std::vector<int>;

TEST(GifWriter, ColourFramesParseWithDelaysAndLoop) {
  std::vector<Image> frames;
  const uint8_t colours[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  for (auto& c : colours) {
    Image f(8, 6, 3);
    for (size_t i = 0; i < f.pixels.size(); ++i) f.pixels[i] = c[i % 3];
    frames.push_back(f);
  }
  const std::string path = "/tmp/fpa_test_gif_" + std::to_string(getpid()) + ".gif";
  write_gif(path, frames, std::vector<int>{10, 20, 150});
  ParsedGif g = parse_gif(read_file_bytes(path));
  std::remove(path.c_str());
  EXPECT_EQ(g.width, 8);
  EXPECT_EQ(g.height, 6);
  ASSERT_EQ(g.frames.size(), 3u);
  EXPECT_EQ(g.delays, (Ints{10, 20, 150}));
  EXPECT_TRUE(g.loops_forever);
  for (int f = 0; f < 3; ++f) {
    ASSERT_EQ(g.frames[f].size(), 48u);
    for (uint8_t idx : g.frames[f])
      for (int c = 0; c < 3; ++c) ASSERT_EQ(g.palette[idx * 3 + c], colours[f][c]);
  }
  EXPECT_ERROR(encode_gif({Image(8, 6, 3), Image(9, 6, 3)}, {5}), "frame 1 is 9x6x3");
}

TEST(GifWriter, NoiseFramesRoundTripThroughLzwTableResets) {
  std::vector<Image> frames(2, Image(150, 130, 1));  // grey: exact 256-level palette
  uint32_t s = 1;
  for (Image& f : frames)
    for (uint8_t& v : f.pixels) v = uint8_t((s = s * 1664525u + 1013904223u) >> 24);
  ParsedGif g = parse_gif(encode_gif(frames, {4}));
  ASSERT_EQ(g.frames.size(), 2u);
  EXPECT_EQ(g.delays, (Ints{4, 4}));
  for (int f = 0; f < 2; ++f) {
    ASSERT_EQ(g.frames[f].size(), frames[f].pixels.size());
    for (size_t i = 0; i < g.frames[f].size(); ++i)
      ASSERT_EQ(g.palette[g.frames[f][i] * 3], frames[f].pixels[i]) << i;
  }
  Image rgb(64, 64, 3);  // colour noise: the 6x7x6 cube, nearest colour
  for (uint8_t& v : rgb.pixels) v = uint8_t((s = s * 1664525u + 1013904223u) >> 24);
  ParsedGif c = parse_gif(encode_gif({rgb}, {4}));
  ASSERT_EQ(c.frames.size(), 1u);
  int worst = 0;
  for (size_t i = 0; i < c.frames[0].size(); ++i) {
    int d2 = 0;
    for (int k = 0; k < 3; ++k)
      d2 += (c.palette[c.frames[0][i] * 3 + k] - rgb.pixels[i * 3 + k]) *
            (c.palette[c.frames[0][i] * 3 + k] - rgb.pixels[i * 3 + k]);
    worst = std::max(worst, d2);
  }
  EXPECT_LE(worst, 26 * 26 + 22 * 22 + 26 * 26);
}

}  // namespace
}  // namespace fpa::test
