// cli_args.cpp: parsing and typed access for `fpa` verb flags.
#include "tools/cli_args.h"

#include "autograd/error.h"
#include "fpa/parse_number.h"

namespace fpa::cli {

Args::Args(int argc, char** argv, int first, std::string verb) : verb_(std::move(verb)) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    FPA_CHECK(a.size() > 2 && a.rfind("--", 0) == 0, "fpa ", verb_, ": unexpected argument '", a,
              "' (flags look like --name value)");
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1), name = name.substr(0, eq);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      value = argv[++i];
    }
    FPA_CHECK(!values_.count(name), "fpa ", verb_, ": flag --", name, " given twice");
    values_[name] = value;
  }
}

bool Args::has(const std::string& name) const {
  used_.insert(name);
  return values_.count(name) > 0;
}

std::string Args::str(const std::string& name, const std::string& fallback) const {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  FPA_CHECK(!it->second.empty(), "fpa ", verb_, ": flag --", name, " needs a value");
  return it->second;
}

std::string Args::required(const std::string& name) const {
  FPA_CHECK(has(name), "fpa ", verb_, ": missing required flag --", name, " (see fpa ", verb_, " --help)");
  return str(name, "");
}

int64_t Args::integer(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  std::string v = str(name, "");
  int64_t r = 0;
  FPA_CHECK(parse_int64(v, &r), "fpa ", verb_, ": --", name, " expects an integer, got '", v, "'");
  return r;
}

double Args::real(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  std::string v = str(name, "");
  double r = 0;
  FPA_CHECK(parse_double(v, &r), "fpa ", verb_, ": --", name, " expects a number, got '", v, "'");
  return r;
}

bool Args::flag(const std::string& name) const {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return false;
  FPA_CHECK(it->second.empty() || it->second == "true" || it->second == "false", "fpa ", verb_, ": --", name,
            " is a switch and takes no value (got '", it->second, "')");
  return it->second != "false";
}

ModelConfig Args::model_config(const std::string& default_preset, const std::set<std::string>& reserved) const {
  std::string preset = str("preset", default_preset);
  ModelConfig c = preset.empty() ? ModelConfig() : preset_config(preset);
  apply_config_keys(c, reserved);
  return c;
}

void Args::apply_config_keys(ModelConfig& c, const std::set<std::string>& reserved) const {
  for (const auto& [name, value] : values_) {
    if (name == "preset" || reserved.count(name) || !is_config_key(name)) continue;
    used_.insert(name);
    set_config_value(c, name, value);
  }
  validate(c);
}

std::string Args::peek(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? "" : it->second;
}

std::vector<std::string> Args::names() const {
  std::vector<std::string> r;
  for (const auto& kv : values_) r.push_back(kv.first);
  return r;
}

void Args::finish() const {
  for (const auto& [name, value] : values_)
    FPA_CHECK(used_.count(name), "fpa ", verb_, ": unknown flag --", name, " (see fpa ", verb_, " --help)");
}

}  // namespace fpa::cli
