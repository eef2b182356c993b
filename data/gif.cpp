// gif.cpp: the animated GIF89a encoder of gif.h: one global palette, LZW-coded frames.
#include "data/gif.h"

#include <cstdint>

#include "autograd/error.h"

namespace fpa {

namespace {

// The global colour table (256 RGB entries) and the index of each pixel's colour in it.
struct GifPalette {
  bool grey = true;  // all frames grey: entry v is (v, v, v)
  uint8_t rgb[256 * 3] = {};

  explicit GifPalette(const std::vector<Image>& frames) {
    for (const Image& f : frames)
      for (size_t p = 0; grey && f.channels == 3 && p < f.pixels.size(); p += 3)
        grey = f.pixels[p] == f.pixels[p + 1] && f.pixels[p] == f.pixels[p + 2];
    for (int i = 0; i < 256; ++i) {
      uint8_t* e = &rgb[i * 3];
      if (grey)
        e[0] = e[1] = e[2] = uint8_t(i);
      else if (i < 252)
        e[0] = level(i / 42, 5), e[1] = level(i / 6 % 7, 6), e[2] = level(i % 6, 5);
      else
        e[0] = e[1] = e[2] = uint8_t(51 * (i - 251));  // 51, 102, 153, 204
    }
  }
  static uint8_t level(int i, int steps) { return uint8_t((i * 255 + steps / 2) / steps); }

  uint8_t index(int r, int g, int b) const {
    if (grey) return uint8_t(r);
    const int ri = (r * 5 + 127) / 255, gi = (g * 6 + 127) / 255, bi = (b * 5 + 127) / 255;
    int best = ri * 42 + gi * 6 + bi, best_d = distance(best, r, g, b);
    for (int i = 252; i < 256; ++i)
      if (int d = distance(i, r, g, b); d < best_d) best = i, best_d = d;
    return uint8_t(best);
  }
  int distance(int i, int r, int g, int b) const {
    const uint8_t* e = &rgb[i * 3];
    return (e[0] - r) * (e[0] - r) + (e[1] - g) * (e[1] - g) + (e[2] - b) * (e[2] - b);
  }
};

// Packs variable-width codes LSB first into 255-byte data sub-blocks.
class GifBitWriter {
 public:
  explicit GifBitWriter(std::vector<uint8_t>& out) : out_(out) {}
  void put(int code, int bits) {
    acc_ |= uint32_t(code) << nbits_;
    nbits_ += bits;
    while (nbits_ >= 8) byte(uint8_t(acc_)), acc_ >>= 8, nbits_ -= 8;
  }
  void finish() {
    if (nbits_ > 0) byte(uint8_t(acc_));
    if (!block_.empty()) flush_block();
    out_.push_back(0);  // block terminator
  }

 private:
  void byte(uint8_t b) {
    block_.push_back(b);
    if (block_.size() == 255) flush_block();
  }
  void flush_block() {
    out_.push_back(uint8_t(block_.size()));
    out_.insert(out_.end(), block_.begin(), block_.end());
    block_.clear();
  }
  std::vector<uint8_t>& out_;
  std::vector<uint8_t> block_;
  uint32_t acc_ = 0;
  int nbits_ = 0;
};

// GIF LZW with 8-bit minimum code size: clear 256, end 257, codes up to 12 bits; the table
// is reset (a clear code) when it fills. Widths change exactly when a decoder's do.
void lzw_encode(const std::vector<uint8_t>& indices, std::vector<uint8_t>& out) {
  constexpr int kClear = 256, kEnd = 257, kMaxCode = 4095;
  out.push_back(8);  // LZW minimum code size
  GifBitWriter bits(out);
  std::vector<int16_t> next(size_t(kMaxCode + 1) * 256, -1);  // (prefix code, byte) -> code
  int width = 9, last = kEnd;  // `last`: the most recently assigned code
  bits.put(kClear, width);
  int cur = -1;
  bool just_cleared = true;
  for (uint8_t p : indices) {
    if (cur < 0) {
      cur = p;
      continue;
    }
    int16_t& slot = next[size_t(cur) * 256 + p];
    if (slot >= 0) {
      cur = slot;
      continue;
    }
    bits.put(cur, width);
    slot = int16_t(++last);
    just_cleared = false;
    if (last >= (1 << width)) ++width;
    if (last == kMaxCode) {
      bits.put(kClear, width);
      std::fill(next.begin(), next.end(), -1);
      width = 9, last = kEnd, just_cleared = true;
    }
    cur = p;
  }
  if (cur >= 0) {
    bits.put(cur, width);
    // A decoder adds an entry after this code (unless it follows a clear) and may widen.
    if (!just_cleared && last + 1 >= (1 << width) && width < 12) ++width;
  }
  bits.put(kEnd, width);
  bits.finish();
}

void put16(std::vector<uint8_t>& out, int v) {
  out.push_back(uint8_t(v & 255));
  out.push_back(uint8_t(v >> 8));
}

}  // namespace

std::vector<uint8_t> encode_gif(const std::vector<Image>& frames,
                                const std::vector<int>& delays_cs) {
  FPA_CHECK(!frames.empty(), "encode_gif: no frames");
  FPA_CHECK(delays_cs.size() == 1 || delays_cs.size() == frames.size(),
            "encode_gif: ", delays_cs.size(), " delays for ", frames.size(),
            " frames (give 1 or one per frame)");
  const int W = frames[0].width, H = frames[0].height;
  FPA_CHECK(W > 0 && H > 0 && W <= 65535 && H <= 65535, "encode_gif: frame size ", W, "x", H);
  for (size_t i = 0; i < frames.size(); ++i) {
    const Image& f = frames[i];
    FPA_CHECK(f.width == W && f.height == H && (f.channels == 1 || f.channels == 3) &&
                  f.pixels.size() == size_t(W) * H * f.channels,
              "encode_gif: frame ", i, " is ", f.width, "x", f.height, "x", f.channels,
              ", frame 0 is ", W, "x", H, " (frames must share a size; 1 or 3 channels)");
  }
  for (int d : delays_cs) FPA_CHECK(d >= 0 && d <= 65535, "encode_gif: delay ", d, " out of range");
  const GifPalette palette(frames);
  std::vector<uint8_t> out = {'G', 'I', 'F', '8', '9', 'a'};
  put16(out, W), put16(out, H);
  out.push_back(0xF7);  // global colour table, 8 bits of colour resolution, 256 entries
  out.push_back(0), out.push_back(0);  // background index, aspect ratio
  out.insert(out.end(), palette.rgb, palette.rgb + 256 * 3);
  const char loop[] = "\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00";  // loop forever
  out.insert(out.end(), loop, loop + sizeof loop - 1);
  std::vector<uint8_t> indices(size_t(W) * H);
  for (size_t i = 0; i < frames.size(); ++i) {
    const Image& f = frames[i];
    out.insert(out.end(), {0x21, 0xF9, 0x04, 0x04});  // graphic control: dispose = leave
    put16(out, delays_cs.size() == 1 ? delays_cs[0] : delays_cs[i]);
    out.push_back(0), out.push_back(0);  // no transparent index, block end
    out.push_back(0x2C);                 // image descriptor: full frame, no local table
    put16(out, 0), put16(out, 0), put16(out, W), put16(out, H);
    out.push_back(0);
    for (size_t p = 0; p < indices.size(); ++p) {
      const uint8_t* s = &f.pixels[p * f.channels];
      indices[p] =
          f.channels == 1 ? palette.index(s[0], s[0], s[0]) : palette.index(s[0], s[1], s[2]);
    }
    lzw_encode(indices, out);
  }
  out.push_back(0x3B);  // trailer
  return out;
}

void write_gif(const std::string& path, const std::vector<Image>& frames,
               const std::vector<int>& delays_cs) {
  write_file_bytes(path, encode_gif(frames, delays_cs));
}

void write_gif(const std::string& path, const std::vector<Image>& frames, int delay_cs) {
  write_gif(path, frames, std::vector<int>{delay_cs});
}

}  // namespace fpa
