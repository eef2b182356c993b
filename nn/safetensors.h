// safetensors.h: checkpoints in the safetensors format (huggingface/safetensors), written
// atomically and read by a strict validating reader.
//
// File layout: 8-byte little-endian header length N; N bytes of JSON
//   {"__metadata__": {string: string}, "name": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8; then the raw little-endian tensor bytes, offsets
// relative to the start of that data section. The reader accepts F32 and F64 (kept as they
// are) and F16 / BF16 (converted to float32); it refuses everything the official library
// refuses (gaps, overlaps, bad byte counts, ...) plus integer dtypes, duplicate names and
// shapes whose non-zero dimensions multiply past 2^63 (an empty tensor's strides would),
// with a message that names the file, the problem and the tensor.
// This file knows nothing about modules: see nn/state_dict.h for that.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace fpa::nn {

// The contents of a checkpoint: tensors in header order (host tensors when read from a file).
struct NamedTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
  std::string source;  // the file it was read from, for error messages ("" when built in memory)

  // The tensor with this name, or null.
  const Tensor* find(const std::string& name) const;
};

// Writes PATH.tmp, flushes and fsyncs it, then renames it over PATH, so a failure at any
// point leaves a previous PATH intact and no PATH.tmp behind. Tensors may live on any device
// (copied to the host); names must be unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
inline void save_safetensors(const std::string& path, const NamedTensors& t) {
  save_safetensors(path, t.tensors, t.metadata);
}

// Reads and validates a whole file; tensors come back on the CPU.
NamedTensors load_safetensors(const std::string& path);
// The same from a file's bytes held in memory; `name` stands for the path in messages.
NamedTensors parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& name);

// The largest header the reader accepts (the official library's limit).
constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

}  // namespace fpa::nn
