// fuzz_targets.h: the engine's file readers as fuzz targets. Each function feeds arbitrary
// bytes to one reader and returns 0 when the reader loaded them or refused them with an
// fpa::Error; any other exception escapes, and a crash, hang or sanitizer report is a finding.
// The libFuzzer entry points (tests/fuzz/fuzz_<name>.cpp, `make fuzz`) and the replay of the
// committed corpus tests/fuzz/corpus/<name>/ (tests/test_fuzz_corpus.cpp, `make test`) call them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace fpa::fuzz {

// nn::parse_safetensors: a whole .safetensors file; each tensor loaded is converted to float64.
int fuzz_safetensors(const uint8_t* data, size_t size);
// decode_png (after fixing up every chunk's CRC) / decode_jpeg: a whole file; a decoded image
// must be consistent (size, channels, pixel count).
int fuzz_png(const uint8_t* data, size_t size);
int fuzz_jpeg(const uint8_t* data, size_t size);
// decode_fashion_mnist: a 4-byte little-endian length L, then L bytes of the images' gzip IDX
// file, then the labels' gzip IDX file (as tests/fuzz/make_corpus.cpp writes them).
int fuzz_fashion_mnist(const uint8_t* data, size_t size);
// encode_gif (the engine has no GIF decoder): frames, delays and pixels built from the bytes
// (see fuzz_targets.cpp); what it encodes must read back through tests/fuzz/gif_decode.h with
// the same size, delays and frames, each pixel its grey level, or for colour frames within half
// a step of the 6x7x6 colour cube.
int fuzz_gif(const uint8_t* data, size_t size);

// The message of the fpa::Error with which the last call refused its input; empty if it loaded it.
const std::string& last_refusal();

struct Target {
  const char* name;  // the corpus folder: tests/fuzz/corpus/<name>
  int (*run)(const uint8_t* data, size_t size);
};
inline constexpr Target kTargets[] = {{"safetensors", fuzz_safetensors},
                                      {"png", fuzz_png},
                                      {"jpeg", fuzz_jpeg},
                                      {"fashion_mnist", fuzz_fashion_mnist},
                                      {"gif", fuzz_gif}};

}  // namespace fpa::fuzz
