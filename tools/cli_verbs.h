// cli_verbs.h: the `fpa` verbs, each a function of its parsed flags returning an exit code.
#pragma once
#include "fpa/models.h"
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
// A checkpoint's generator in eval mode: GE (the EMA generator) when `ema` and present, else G.
GeneratorModel load_generator(const Args& a, nn::NamedTensors& ckpt, bool ema);
int train(const Args& a);
int sample(const Args& a);
int paint(const Args& a);
int interpolate(const Args& a);

// cli_fid.cpp
int fid(const Args& a);

}  // namespace fpa::cli
