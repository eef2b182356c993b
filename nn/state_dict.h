// state_dict.h: a module's parameters as named tensors, and loading them back in place.
//
// Names are the module's dotted parameter names behind a prefix ("G." gives
// "G.decoder_rnn.weight_ih_l0"), exactly as the reference PyTorch state dict, so a
// checkpoint exported from the official code loads here and back. Loading copies into the
// existing parameter storage (the Tensor objects and any views of them stay valid) and is
// all-or-nothing: every check runs before the first byte is copied.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "nn/safetensors.h"

namespace fpa::nn {

struct LoadOptions {
  // Convert a float64 file tensor into a float32 parameter (or back); otherwise an error.
  bool allow_dtype_conversion = false;
  // File tensors under the prefix that the module lacks are an error unless their full name
  // starts with one of these (augmentation state, the U-Net's aliased `mod_dict` copies).
  std::vector<std::string> ignore_prefixes = {"D_aug.", "G.mod_dict.", "GE.mod_dict."};
};

// The parameters of m as (prefix + dotted name, tensor sharing the parameter's storage).
std::vector<std::pair<std::string, Tensor>> state_dict(Module& m, const std::string& prefix = "");

// Copies file tensor prefix + name into each parameter of m. Throws naming the file and the
// tensor(s) on: missing parameters (up to 5 listed), shape or dtype mismatch, and tensors
// under the prefix that m does not have (unless ignored by opt.ignore_prefixes).
void load_state_dict(Module& m, const std::string& prefix, const NamedTensors& file,
                     const LoadOptions& opt = {});

// The first tensor holding a NaN or an infinity, as "NAME holds K non-finite values (of N)", or
// "" when every value is finite (tensors on a device are read through a host copy).
std::string first_non_finite(const std::vector<std::pair<std::string, Tensor>>& tensors);

// Whether any file tensor's name starts with prefix (e.g. the optional "GE." EMA generator).
bool has_prefix(const NamedTensors& file, const std::string& prefix);

}  // namespace fpa::nn
