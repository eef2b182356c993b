// fresh_base.h: for the benchmarks of the U-Net model, which trains from a finished FPA
// (--init-from): a fresh FPA's weights saved where the trainer reads them.
#pragma once
#include <string>

#include "fpa/config.h"

namespace fpa::tools {

// Saves a freshly initialised FPA (the U-Net model's base, as config m.g with model "v2") under
// "G." in the temporary folder and returns the file's path.
std::string fresh_base_checkpoint(const ModelConfig& m);

}  // namespace fpa::tools
