// gif_decode.h: a GIF reader for the tests (test_gif.cpp) and the GIF fuzz target, written from
// the GIF89a spec to read back what data/gif.h writes: size, global palette, per-frame delays,
// the NETSCAPE loop extension and LZW-decoded full frames. Anything else it cannot read (a local
// colour table, a frame of another size, a broken LZW stream, bytes after the trailer) is a
// std::runtime_error, never an fpa::Error: our own encoder's output must always read back.
#pragma once
#include <cstdint>
#include <vector>

namespace fpa::test {

struct ParsedGif {
  int width = 0, height = 0;
  std::vector<uint8_t> palette;  // (256 * 3)
  std::vector<int> delays;       // hundredths of a second, per frame
  bool loops_forever = false;
  std::vector<std::vector<uint8_t>> frames;  // palette indices, (H * W) each
};

ParsedGif parse_gif(const std::vector<uint8_t>& bytes);

}  // namespace fpa::test
