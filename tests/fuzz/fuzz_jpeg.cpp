// fuzz_jpeg.cpp: libFuzzer's entry point for fuzz_jpeg (fuzz_targets.h; `make fuzz`).
#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fpa::fuzz::fuzz_jpeg(data, size);
}
