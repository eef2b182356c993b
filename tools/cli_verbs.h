// cli_verbs.h: the `fpa` verbs, each a function of its parsed flags returning an exit code.
#pragma once
#include "nn/safetensors.h"
#include "tools/cli_args.h"

namespace fpa::cli {

struct Verb {
  const char* name;
  const char* summary;
  const char* usage;  // the flags, printed by --help
  int (*run)(const Args& args);
  bool model_flags;   // also accepts --preset and configuration keys
};

// cli_models.cpp
// A warning on stderr naming the first tensor under `prefix` that holds a NaN or an infinity.
void warn_if_not_finite(const Args& a, const nn::NamedTensors& ckpt, const std::string& prefix);

int params(const Args& a);
int generate(const Args& a);
int discriminate(const Args& a);

// cli_train.cpp
int train(const Args& a);
int sample(const Args& a);
int paint(const Args& a);
int interpolate(const Args& a);

}  // namespace fpa::cli
