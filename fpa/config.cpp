// config.cpp: presets, validation, and the metadata round trip. One table of fields (name,
// getter/setter) serves printing, parsing and overrides alike.
#include "fpa/config.h"

#include <functional>
#include <sstream>

#include "autograd/error.h"
#include "fpa/parse_number.h"

namespace fpa {
namespace {

struct Field {
  std::string key;
  std::function<std::string(const ModelConfig&)> get;
  std::function<void(ModelConfig&, const std::string&)> set;
};

int64_t parse_int(const std::string& key, const std::string& v) {
  int64_t r = 0;
  FPA_CHECK(parse_int64(v, &r), "config: ", key, " expects an integer, got '", v, "'");
  return r;
}

bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  fail("config: ", key, " expects true or false, got '", v, "'");
}

std::vector<int64_t> parse_list(const std::string& key, const std::string& v) {
  std::vector<int64_t> r;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) r.push_back(parse_int(key, item));
  return r;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

#define INT_FIELD(key, member) \
  Field{key, [](const ModelConfig& c) { return std::to_string(c.member); }, \
        [](ModelConfig& c, const std::string& v) { c.member = parse_int(key, v); }}
#define BOOL_FIELD(key, member) \
  Field{key, [](const ModelConfig& c) { return std::string(c.member ? "true" : "false"); }, \
        [](ModelConfig& c, const std::string& v) { c.member = parse_bool(key, v); }}
#define LIST_FIELD(key, member) \
  Field{key, [](const ModelConfig& c) { return join(c.member); }, \
        [](ModelConfig& c, const std::string& v) { c.member = parse_list(key, v); }}

const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      Field{"preset", [](const ModelConfig& c) { return c.preset; },
            [](ModelConfig& c, const std::string& v) { c.preset = v; }},
      Field{"g.model", [](const ModelConfig& c) { return c.g.model; },
            [](ModelConfig& c, const std::string& v) { c.g.model = v; }},
      INT_FIELD("g.image_size", g.image_size), INT_FIELD("g.channels", g.channels), INT_FIELD("g.steps", g.steps),
      INT_FIELD("g.latent_dim", g.latent_dim), INT_FIELD("g.hidden", g.hidden), INT_FIELD("g.layers", g.layers),
      INT_FIELD("g.mini_latent", g.mini_latent), INT_FIELD("g.mini_input", g.mini_input),
      BOOL_FIELD("g.input_tanh", g.input_tanh), BOOL_FIELD("g.use_pos_enc", g.use_pos_enc),
      BOOL_FIELD("g.val_tanh", g.val_tanh), BOOL_FIELD("g.no_sigmoid_lr", g.no_sigmoid_lr),
      BOOL_FIELD("g.vect_lr", g.vect_lr), INT_FIELD("g.wide_out_dim", g.wide_out_dim),
      BOOL_FIELD("g.learned_w0", g.learned_w0), INT_FIELD("g.unet_dim", g.unet_dim),
      LIST_FIELD("g.unet_dim_mults", g.unet_dim_mults), BOOL_FIELD("g.unet_tanh", g.unet_tanh),
      BOOL_FIELD("g.stop_grad_unet", g.stop_grad_unet), BOOL_FIELD("g.frozen_base", g.frozen_base),
      INT_FIELD("d.image_size", d.image_size), INT_FIELD("d.channels", d.channels), INT_FIELD("d.fmap_max", d.fmap_max),
      INT_FIELD("d.fmap_inverse_coef", d.fmap_inverse_coef), INT_FIELD("d.output_size", d.output_size),
      LIST_FIELD("d.attn_res_layers", d.attn_res_layers), INT_FIELD("d.attn_heads", d.attn_heads),
      INT_FIELD("d.attn_dim_head", d.attn_dim_head),
  };
  return f;
}

const Field* find_field(const std::string& key) {
  for (const Field& f : fields())
    if (f.key == key) return &f;
  return nullptr;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"paper-rgb64-T64",      "paper-rgb64-T16",      "grey32-T32",      "cpu-small",
          "paper-rgb64-T64+unet", "paper-rgb64-T16+unet", "grey32-T32+unet", "cpu-small+unet"};
}

ModelConfig preset_config(const std::string& name) {
  std::string base = name;
  bool unet = false;
  if (base.size() > 5 && base.substr(base.size() - 5) == "+unet") base = base.substr(0, base.size() - 5), unet = true;
  ModelConfig c;
  c.preset = name;
  if (base == "paper-rgb64-T64" || base == "paper-rgb64-T16") {
    c.g.steps = base == "paper-rgb64-T64" ? 64 : 16;
  } else if (base == "grey32-T32") {
    c.g.image_size = c.d.image_size = 32;
    c.g.channels = c.d.channels = 1;
    c.g.steps = 32, c.g.latent_dim = 256, c.g.hidden = 512;
  } else if (base == "cpu-small") {
    // grey32-T32's family at widths a 2-core CPU trains in minutes: a smaller LSTM, a narrow
    // discriminator with 2 x 16 attention heads and no attention on the 1-channel input.
    c.g.image_size = c.d.image_size = 32;
    c.g.channels = c.d.channels = 1;
    c.g.steps = 32, c.g.latent_dim = 128, c.g.hidden = 256, c.g.mini_input = 64;
    c.d.fmap_max = 64, c.d.attn_heads = 2, c.d.attn_dim_head = 16, c.d.attn_res_layers = {};
  } else {
    std::string known;
    for (const std::string& p : preset_names()) known += " " + p;
    fail("unknown preset '", name, "'; known presets:", known);
  }
  if (unet) c.g.model = "unet";
  return c;
}

std::map<std::string, std::string> to_metadata(const ModelConfig& c) {
  std::map<std::string, std::string> m;
  for (const Field& f : fields()) m[f.key] = f.get(c);
  return m;
}

ModelConfig from_metadata(const std::map<std::string, std::string>& m) {
  ModelConfig c;
  for (const auto& [k, v] : m) {
    if (k.rfind("g.", 0) != 0 && k.rfind("d.", 0) != 0 && k != "preset") continue;  // other metadata
    const Field* f = find_field(k);
    FPA_CHECK(f != nullptr, "checkpoint metadata: unknown model configuration key '", k, "'");
    f->set(c, v);
  }
  return c;
}

void set_config_value(ModelConfig& c, const std::string& key, const std::string& value) {
  if (key == "image_size" || key == "channels") {  // short forms set both models
    find_field("g." + key)->set(c, value);
    find_field("d." + key)->set(c, value);
    return;
  }
  const Field* f = find_field(key);
  if (!f) f = find_field("g." + key);
  FPA_CHECK(f != nullptr, "config: unknown option '", key, "'");
  f->set(c, value);
}

bool is_config_key(const std::string& key) {
  return find_field(key) != nullptr || find_field("g." + key) != nullptr;
}

void validate(const ModelConfig& c) {
  static const char* models[] = {"v2", "v1", "hebb", "oja", "unet"};
  bool known = false;
  for (const char* m : models) known = known || c.g.model == m;
  FPA_CHECK(known, "config: g.model '", c.g.model, "' is not one of v2, v1, hebb, oja, unet");
  for (int64_t side : {c.g.image_size, c.d.image_size})
    FPA_CHECK(side >= 16 && side <= 256 && (side & (side - 1)) == 0, "config: image size ", side,
              " is not a power of two between 16 and 256");
  FPA_CHECK(c.g.image_size == c.d.image_size, "config: generator side ", c.g.image_size,
            " differs from discriminator side ", c.d.image_size);
  FPA_CHECK(c.g.channels == c.d.channels && (c.g.channels == 1 || c.g.channels == 3), "config: channels ",
            c.g.channels, " (generator) / ", c.d.channels, " (discriminator) must agree and be 1 or 3");
  for (auto [name, v] : {std::pair<const char*, int64_t>{"g.steps", c.g.steps}, {"g.latent_dim", c.g.latent_dim},
                         {"g.hidden", c.g.hidden}, {"g.layers", c.g.layers}, {"g.mini_latent", c.g.mini_latent},
                         {"g.mini_input", c.g.mini_input}, {"d.fmap_max", c.d.fmap_max},
                         {"d.attn_heads", c.d.attn_heads}, {"d.attn_dim_head", c.d.attn_dim_head}})
    FPA_CHECK(v > 0, "config: ", name, " must be positive, got ", v);
  FPA_CHECK(c.d.output_size == 1 || c.d.output_size == 5, "config: d.output_size must be 1 or 5, got ",
            c.d.output_size);
  FPA_CHECK(!c.g.learned_w0 || c.g.model == "v1", "config: g.learned_w0 applies to model v1 only");
}

}  // namespace fpa
