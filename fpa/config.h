// config.h: the configuration of every model of the paper's code (FPA_REFERENCE.md
// sections 1-5), the named presets, and its round trip through a checkpoint's
// `__metadata__` string map.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fpa {

struct GeneratorConfig {
  std::string model = "v2";  // v2 (delta, lstm_delta_split_v2), v1 (lstm_delta), hebb (lstm_sum),
                             // oja (lstm_oja_split_v2), unet (lstm_delta_split_v2_unet)
  int64_t image_size = 64;   // S
  int64_t channels = 3;      // C
  int64_t steps = 64;        // T
  int64_t latent_dim = 512;  // L
  int64_t hidden = 1024;     // H, LSTM hidden size
  int64_t layers = 1;        // LSTM layers
  int64_t mini_latent = 8;   // m, per-step input generator width
  int64_t mini_input = 128;  // I, LSTM input size (v2 family)
  bool input_tanh = true;    // the official `v2_input_sigmoid` flag (it applies tanh)
  bool use_pos_enc = false;  // learned (T, I) added to the LSTM input
  bool val_tanh = false;     // tanh on the values
  bool no_sigmoid_lr = false;
  bool vect_lr = false;      // one rate per row: C*S rates instead of C
  int64_t wide_out_dim = 0;  // > 0: Linear(H -> wide_out_dim) + ReLU before kvb_net
  bool learned_w0 = false;   // v1 only: a learned start image W0
  // U-Net refiner (model "unet"), section 4.
  int64_t unet_dim = 0;      // 0: the image side S
  std::vector<int64_t> unet_dim_mults = {1, 2, 4};
  bool unet_tanh = false;
  bool stop_grad_unet = false;
  bool frozen_base = true;
};

struct DiscriminatorConfig {
  int64_t image_size = 64;
  int64_t channels = 3;
  int64_t fmap_max = 512;
  int64_t fmap_inverse_coef = 12;
  int64_t output_size = 1;                    // 1 or 5
  std::vector<int64_t> attn_res_layers = {32};
  int64_t attn_heads = 8;      // LinearAttention heads (fixed at 8 x 64 in the official code;
  int64_t attn_dim_head = 64;  // smaller for CPU presets and test fixtures)
};

struct ModelConfig {
  std::string preset;  // the preset it started from ("" if none)
  GeneratorConfig g;
  DiscriminatorConfig d;
};

// The named presets of FPA_REFERENCE.md section 1: paper-rgb64-T64, paper-rgb64-T16,
// grey32-T32, plus cpu-small (the default CPU run; each also as "<name>+unet"). Throws
// listing the known names otherwise.
ModelConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

// Flat string map for a checkpoint's __metadata__ ("g.hidden" -> "1024", ...), and back.
// from_metadata starts from the defaults, so a key missing from an older file keeps its
// default; an unknown key or a malformed value raises an error naming it.
std::map<std::string, std::string> to_metadata(const ModelConfig& c);
ModelConfig from_metadata(const std::map<std::string, std::string>& m);

// Applies "--key value" style overrides: key is a metadata key ("g.steps") or its short
// form ("steps"); "image_size" and "channels" set both generator and discriminator.
// Throws naming the key when unknown or the value when malformed.
void set_config_value(ModelConfig& c, const std::string& key, const std::string& value);
// Whether set_config_value knows `key` (in either form).
bool is_config_key(const std::string& key);

// Checks the combination (power-of-two side 16..256, positive sizes, known model...);
// throws naming the offending field.
void validate(const ModelConfig& c);

}  // namespace fpa
