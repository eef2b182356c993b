// gif_decode.cpp: the GIF reader of gif_decode.h: block parser and LZW decoder.
#include "tests/fuzz/gif_decode.h"

#include <stdexcept>
#include <string>

namespace fpa::test {
namespace {

using Bytes = std::vector<uint8_t>;

[[noreturn]] void bad(const std::string& what) { throw std::runtime_error("parse_gif: " + what); }

// The table holds each code's string as (the code of its prefix, its last byte), so adding
// an entry and writing a string cost no copies.
Bytes lzw_decode(const Bytes& data, int min_size) {
  if (min_size < 2 || min_size > 8) bad("LZW minimum code size " + std::to_string(min_size));
  const int clear = 1 << min_size, end = clear + 1;
  int prefix[4096], length[4096];
  uint8_t first[4096], last[4096];
  for (int i = 0; i < clear; ++i) prefix[i] = -1, length[i] = 1, first[i] = last[i] = uint8_t(i);
  int next = end + 1, width = min_size + 1, prev = -1;
  Bytes out;
  for (size_t bit = 0;;) {
    if (bit + width > data.size() * 8) bad("LZW stream ends without an end code");
    int code = 0;
    for (int i = 0; i < width; ++i, ++bit) code |= ((data[bit / 8] >> (bit % 8)) & 1) << i;
    if (code == clear) {
      next = end + 1, width = min_size + 1, prev = -1;
      continue;
    }
    if (code == end) return out;
    if (code > next || (code == next && (prev < 0 || next == 4096)))
      bad("bad LZW code " + std::to_string(code));
    if (prev >= 0 && next < 4096) {  // prev's string and the first byte of code's (prev's when new)
      prefix[next] = prev, length[next] = length[prev] + 1;
      first[next] = first[prev], last[next] = first[code < next ? code : prev];
      ++next;
    }
    out.resize(out.size() + length[code]);
    for (int c = code, at = int(out.size()); c >= 0; c = prefix[c]) out[--at] = last[c];
    prev = code;
    if (next == (1 << width) && width < 12) ++width;
  }
}

}  // namespace

ParsedGif parse_gif(const Bytes& b) {
  ParsedGif g;
  if (b.size() < 13 || std::string(b.begin(), b.begin() + 6) != "GIF89a") bad("no GIF89a header");
  size_t p = 6;
  auto u16 = [&](size_t at) { return b.at(at) | b.at(at + 1) << 8; };
  auto sub_blocks = [&] {
    Bytes data;
    while (int n = b.at(p++)) {
      if (p + n > b.size()) bad("a data sub-block runs past the end");
      data.insert(data.end(), b.begin() + p, b.begin() + p + n), p += n;
    }
    return data;
  };
  g.width = u16(6), g.height = u16(8);
  const int packed = b.at(10);
  p = 13;
  if (packed & 0x80) {
    const size_t n = 3u << ((packed & 7) + 1);
    if (p + n > b.size()) bad("the global colour table runs past the end");
    g.palette.assign(b.begin() + p, b.begin() + p + n), p += n;
  }
  for (;;) {
    const int block = b.at(p++);
    if (block == 0x3B) break;
    if (block == 0x21) {
      const int label = b.at(p++);
      const size_t start = p;
      const Bytes data = sub_blocks();
      if (label == 0xF9) g.delays.push_back(u16(start + 2));
      if (label == 0xFF && data.size() >= 14 && std::string(data.begin(), data.begin() + 11) == "NETSCAPE2.0")
        g.loops_forever = data[11] == 1 && data[12] == 0 && data[13] == 0;
    } else if (block == 0x2C) {
      if (u16(p) != 0 || u16(p + 2) != 0 || u16(p + 4) != g.width || u16(p + 6) != g.height)
        bad("a frame that is not the full canvas");
      if (b.at(p + 8) & 0xC0) bad("a local colour table or interlaced frame");
      p += 9;
      const int min_size = b.at(p++);
      g.frames.push_back(lzw_decode(sub_blocks(), min_size));
    } else {
      bad("unknown block " + std::to_string(block) + " at byte " + std::to_string(p - 1));
    }
  }
  if (p != b.size()) bad(std::to_string(b.size() - p) + " bytes after the trailer");
  return g;
}

}  // namespace fpa::test
