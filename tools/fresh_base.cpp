// fresh_base.cpp: a fresh FPA's weights for the U-Net model's benchmarks (fresh_base.h).
#include "tools/fresh_base.h"

#include <filesystem>

#include "fpa/fast_weight_painter.h"
#include "nn/safetensors.h"
#include "nn/state_dict.h"

namespace fpa::tools {

std::string fresh_base_checkpoint(const ModelConfig& m) {
  GeneratorConfig g = m.g;
  g.model = "v2";
  FastWeightPainter base(g);
  std::string path =
      (std::filesystem::temp_directory_path() / ("bench_gpu_base_" + m.preset + ".safetensors")).string();
  nn::save_safetensors(path, nn::state_dict(base, "G."));
  return path;
}

}  // namespace fpa::tools
