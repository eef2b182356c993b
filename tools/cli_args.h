// cli_args.h: the flag parser shared by every `fpa` verb: --name value pairs and bare
// --switches, typed getters with defaults, model-configuration flags (--preset plus any
// configuration key such as --steps 16 or --d.fmap_max 64), and a clear error for any flag a
// verb did not read ("fpa generate: unknown flag --lattents").
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fpa/config.h"

namespace fpa::cli {

class Args {
 public:
  // argv[first..] are the verb's flags; `verb` names it in messages.
  Args(int argc, char** argv, int first, std::string verb);

  bool has(const std::string& name) const;
  std::string str(const std::string& name, const std::string& fallback) const;
  std::string required(const std::string& name) const;  // throws naming the flag when absent
  int64_t integer(const std::string& name, int64_t fallback) const;
  double real(const std::string& name, double fallback) const;
  bool flag(const std::string& name) const;  // a bare switch (--ema)
  bool help() const { return flag("help"); }

  // --preset (default `default_preset`, "" for none) plus every configuration-key flag, except
  // the names in `reserved` (a verb's own flags, e.g. train's --steps, which is not g.steps).
  ModelConfig model_config(const std::string& default_preset, const std::set<std::string>& reserved = {}) const;
  // Every configuration-key flag applied to c (a checkpoint's configuration), then validated.
  void apply_config_keys(ModelConfig& c, const std::set<std::string>& reserved = {}) const;

  // The raw value of a flag ("" when absent or a bare switch), without marking it as read.
  std::string peek(const std::string& name) const;
  // Every flag given, in order of name.
  std::vector<std::string> names() const;
  // Throws naming the first flag that no getter asked for.
  void finish() const;
  const std::string& verb() const { return verb_; }

 private:
  std::string verb_;
  std::map<std::string, std::string> values_;  // "" for bare switches
  mutable std::set<std::string> used_;
};

}  // namespace fpa::cli
