// train_options.cpp: defaults, flags and metadata of training runs.
#include "train/train_options.h"

#include <functional>
#include <sstream>
#include <vector>

#include "autograd/error.h"
#include "autograd/parse_number.h"

namespace fpa {
namespace {

std::string num(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

double to_double(const std::string& key, const std::string& v) {
  double r = 0;
  FPA_CHECK(parse_double(v, &r), "train: --", key, " expects a number, got '", v, "'");
  return r;
}

int64_t to_int(const std::string& key, const std::string& v) {
  double d = to_double(key, v);
  FPA_CHECK(d == double(int64_t(d)), "train: --", key, " expects an integer, got '", v, "'");
  return int64_t(d);
}

// One row per option: flag name, whether it is part of the experiment, get, set.
struct Option {
  std::string flag;
  bool experiment;
  std::function<std::string(const TrainOptions&)> get;
  std::function<void(TrainOptions&, const std::string&)> set;
};

#define INT_OPT(flag, exp, member) \
  Option{flag, exp, [](const TrainOptions& o) { return std::to_string(o.member); }, \
         [](TrainOptions& o, const std::string& v) { o.member = to_int(flag, v); }}
#define REAL_OPT(flag, exp, member) \
  Option{flag, exp, [](const TrainOptions& o) { return num(o.member); }, \
         [](TrainOptions& o, const std::string& v) { o.member = to_double(flag, v); }}
#define STR_OPT(flag, exp, member) \
  Option{flag, exp, [](const TrainOptions& o) { return o.member; }, \
         [](TrainOptions& o, const std::string& v) { o.member = v; }}

const std::vector<Option>& options() {
  static const std::vector<Option> opts = {
      STR_OPT("data", true, data), INT_OPT("batch", true, batch), INT_OPT("grad-accumulate", true, grad_accumulate),
      REAL_OPT("lr", true, lr), REAL_OPT("beta1", true, beta1), REAL_OPT("beta2", true, beta2),
      REAL_OPT("aug-prob", true, aug_prob), INT_OPT("gp-every", true, gp_every), REAL_OPT("gp-weight", true, gp_weight),
      REAL_OPT("ema-beta", true, ema_beta), INT_OPT("ema-every", true, ema_every), INT_OPT("ema-start", true, ema_start),
      INT_OPT("ema-reset-until", true, ema_reset_until),
      Option{"seed", true, [](const TrainOptions& o) { return std::to_string(o.seed); },
             [](TrainOptions& o, const std::string& v) { o.seed = uint64_t(to_int("seed", v)); }},
      STR_OPT("init-from", true, init_from), INT_OPT("steps", false, steps), STR_OPT("out", false, out),
      INT_OPT("sample-every", false, sample_every), INT_OPT("checkpoint-every", false, checkpoint_every),
      INT_OPT("log-every", false, log_every),
  };
  return opts;
}

}  // namespace

TrainOptions train_defaults(const std::string& preset) {
  TrainOptions o;
  o.model = preset_config(preset);
  std::string base = preset.substr(0, preset.find('+'));
  if (base == "paper-rgb64-T64" || base == "paper-rgb64-T16") o.batch = 20;
  if (base == "cpu-small") {
    // About 18 minutes on 2 cores (409 ms/step): recognisable garments from about step 2000.
    // EMA from step 100, updated every step, no resets.
    o.batch = 16, o.ema_start = 100, o.ema_every = 1, o.ema_beta = 0.99, o.ema_reset_until = 0;
    o.steps = 2500, o.sample_every = 250, o.checkpoint_every = 250, o.log_every = 25;
  }
  return o;
}

std::map<std::string, std::string> train_metadata(const TrainOptions& o) {
  std::map<std::string, std::string> m = to_metadata(o.model);
  for (const Option& opt : options())
    if (opt.experiment) m["train." + opt.flag] = opt.get(o);
  return m;
}

void apply_train_metadata(TrainOptions& o, const std::map<std::string, std::string>& m) {
  o.model = from_metadata(m);
  for (const Option& opt : options()) {
    auto it = m.find("train." + opt.flag);
    if (opt.experiment && it != m.end()) opt.set(o, it->second);
  }
}

std::string first_difference(const std::map<std::string, std::string>& saved,
                             const std::map<std::string, std::string>& requested) {
  for (const auto& [k, v] : requested) {
    if (k.rfind("train.", 0) != 0 && k.rfind("g.", 0) != 0 && k.rfind("d.", 0) != 0) continue;
    auto it = saved.find(k);
    if (it == saved.end() || it->second != v)
      return k + " (checkpoint: " + (it == saved.end() ? "absent" : it->second) + ", now: " + v + ")";
  }
  return "";
}

std::set<std::string> train_flag_names() {
  std::set<std::string> r;
  for (const Option& opt : options()) r.insert(opt.flag);
  return r;
}

bool set_train_flag(TrainOptions& o, const std::string& name, const std::string& value) {
  for (const Option& opt : options())
    if (opt.flag == name) {
      opt.set(o, value);
      return true;
    }
  return false;
}

}  // namespace fpa
