// test_gif.cpp: the animated GIF writer, read back by a parser and LZW decoder written here:
// size, palette, per-frame delays, the loop extension, and frames of noise that make the LZW
// table fill and reset.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "data/gif.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using Bytes = std::vector<uint8_t>;
using Ints = std::vector<int>;

struct ParsedGif {
  int width = 0, height = 0;
  Bytes palette;  // (256 * 3)
  std::vector<int> delays;
  bool loops_forever = false;
  std::vector<Bytes> frames;  // palette indices, (H * W) each
};

Bytes lzw_decode(const Bytes& data, int min_size) {
  const int clear = 1 << min_size, end = clear + 1;
  std::vector<Bytes> dict;
  int width = min_size + 1, prev = -1;
  auto reset = [&] {
    dict.assign(clear + 2, Bytes());
    for (int i = 0; i < clear; ++i) dict[i] = Bytes{uint8_t(i)};
    width = min_size + 1, prev = -1;
  };
  reset();
  Bytes out;
  size_t bit = 0;
  for (;;) {
    if (bit + width > data.size() * 8) {
      ADD_FAILURE() << "LZW stream ends without an end code";
      return out;
    }
    int code = 0;
    for (int i = 0; i < width; ++i, ++bit) code |= ((data[bit / 8] >> (bit % 8)) & 1) << i;
    if (code == clear) {
      reset();
      continue;
    }
    if (code == end) return out;
    Bytes entry;
    if (code < int(dict.size()))
      entry = dict[code];
    else if (code == int(dict.size()) && prev >= 0)
      entry = dict[prev], entry.push_back(dict[prev][0]);
    else {
      ADD_FAILURE() << "bad LZW code " << code;
      return out;
    }
    out.insert(out.end(), entry.begin(), entry.end());
    if (prev >= 0 && dict.size() < 4096)
      dict.push_back(dict[prev]), dict.back().push_back(entry[0]);
    prev = code;
    if (int(dict.size()) == (1 << width) && width < 12) ++width;
  }
}

ParsedGif parse_gif(const Bytes& b) {
  ParsedGif g;
  EXPECT_EQ(std::string(b.begin(), b.begin() + 6), "GIF89a");
  size_t p = 6;
  auto u16 = [&](size_t at) { return b.at(at) | b.at(at + 1) << 8; };
  auto sub_blocks = [&] {
    Bytes data;
    while (int n = b.at(p++)) data.insert(data.end(), b.begin() + p, b.begin() + p + n), p += n;
    return data;
  };
  g.width = u16(6), g.height = u16(8);
  const int packed = b.at(10);
  p = 13;
  if (packed & 0x80) {
    size_t n = 3u << ((packed & 7) + 1);
    g.palette.assign(b.begin() + p, b.begin() + p + n), p += n;
  }
  for (;;) {
    const int block = b.at(p++);
    if (block == 0x3B) break;
    if (block == 0x21) {
      const int label = b.at(p++);
      size_t start = p;
      Bytes data = sub_blocks();
      if (label == 0xF9) g.delays.push_back(u16(start + 2));
      if (label == 0xFF && std::string(data.begin(), data.begin() + 11) == "NETSCAPE2.0")
        g.loops_forever = data.at(11) == 1 && data.at(12) == 0 && data.at(13) == 0;
    } else if (block == 0x2C) {
      EXPECT_EQ(u16(p + 4), g.width);
      EXPECT_EQ(b.at(p + 8) & 0x80, 0) << "no local colour table";
      p += 9;
      const int min_size = b.at(p++);
      g.frames.push_back(lzw_decode(sub_blocks(), min_size));
    } else {
      ADD_FAILURE() << "unknown GIF block 0x" << std::hex << block << " at " << std::dec << p - 1;
      break;
    }
  }
  EXPECT_EQ(p, b.size()) << "bytes after the trailer";
  return g;
}

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
