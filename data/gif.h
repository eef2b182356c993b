// gif.h: looping animated GIF89a files, from our own encoder (a global palette and LZW).
#pragma once
#include <string>
#include <vector>

#include "data/image_io.h"

namespace fpa {

// Frames are grey or RGB, all of one size; each frame is shown for its delay in hundredths of
// a second (one value for all, or one per frame). Palette: one global table. All-grey frames
// get the 256 grey levels (exact); otherwise a fixed 6x7x6 RGB colour cube plus 4 extra greys,
// nearest colour, no dithering.
std::vector<uint8_t> encode_gif(const std::vector<Image>& frames, const std::vector<int>& delays_cs);
void write_gif(const std::string& path, const std::vector<Image>& frames, int delay_cs);
void write_gif(const std::string& path, const std::vector<Image>& frames, const std::vector<int>& delays_cs);

}  // namespace fpa
