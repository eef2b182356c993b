// train_options.cpp: defaults, flags and metadata of training runs.
#include "train/train_options.h"

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/error.h"
#include "fpa/parse_number.h"

namespace fpa {
namespace {

double to_double(const std::string& key, const std::string& v) {
  double r = 0;
  FPA_CHECK(parse_double(v, &r), "--", key, " expects a number, got '", v, "'");
  return r;
}

int64_t to_int(const std::string& key, const std::string& v) {
  int64_t r = 0;
  FPA_CHECK(parse_int64(v, &r), "--", key, " expects an integer, got '", v, "'");
  return r;
}

uint64_t to_uint(const std::string& key, const std::string& v) {
  uint64_t r = 0;
  FPA_CHECK(parse_uint64(v, &r), "--", key, " expects a non-negative integer, got '", v, "'");
  return r;
}

void check_range(const char* flag, double v, double lo, double hi, bool hi_included) {
  const bool ok = std::isfinite(v) && v >= lo && (hi_included ? v <= hi : v < hi);
  FPA_CHECK(ok, "--", flag, " must be in [", shortest_decimal(lo), ", ", std::isinf(hi) ? "inf" : shortest_decimal(hi),
            hi_included ? "]" : ")", ", got ", shortest_decimal(v));
}

void check_at_least(const char* flag, int64_t v, int64_t lo, const char* meaning = "") {
  FPA_CHECK(v >= lo, "--", flag, " must be at least ", lo, meaning, ", got ", v);
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
  Option{flag, exp, [](const TrainOptions& o) { return shortest_decimal(o.member); }, \
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
             [](TrainOptions& o, const std::string& v) { o.seed = to_uint("seed", v); }},
      STR_OPT("init-from", true, init_from), INT_OPT("steps", false, steps), STR_OPT("out", false, out),
      INT_OPT("sample-every", false, sample_every), INT_OPT("checkpoint-every", false, checkpoint_every),
      INT_OPT("log-every", false, log_every), INT_OPT("nan-retries", false, nan_retries),
      INT_OPT("fid-every", false, fid_every), INT_OPT("fid-n", false, fid_n),
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
    // Recognisable garments from about step 2000 (its time: the README's benchmarks).
    // EMA from step 100, updated every step, no resets.
    o.batch = 16, o.ema_start = 100, o.ema_every = 1, o.ema_beta = 0.99, o.ema_reset_until = 0;
    o.steps = 2500, o.sample_every = 250, o.checkpoint_every = 250, o.log_every = 25;
  }
  return o;
}

void check_train_options(const TrainOptions& o) {
  const double inf = std::numeric_limits<double>::infinity();
  check_at_least("batch", o.batch, 1), check_at_least("grad-accumulate", o.grad_accumulate, 1);
  FPA_CHECK(std::isfinite(o.lr) && o.lr > 0, "--lr must be a positive number, got ", shortest_decimal(o.lr));
  check_range("beta1", o.beta1, 0, 1, false), check_range("beta2", o.beta2, 0, 1, false);
  check_range("aug-prob", o.aug_prob, 0, 1, true);
  check_at_least("gp-every", o.gp_every, 0, " (0: no gradient penalty)");
  check_range("gp-weight", o.gp_weight, 0, inf, false);
  check_range("ema-beta", o.ema_beta, 0, 1, true);
  check_at_least("ema-every", o.ema_every, 0, " (0: no EMA updates)");
  check_at_least("ema-start", o.ema_start, 0), check_at_least("ema-reset-until", o.ema_reset_until, 0);
  check_at_least("steps", o.steps, 1);
  check_at_least("sample-every", o.sample_every, 0, " (0: pictures at the end only)");
  check_at_least("checkpoint-every", o.checkpoint_every, 0, " (0: a checkpoint at the end only)");
  check_at_least("log-every", o.log_every, 0, " (0: no periodic log lines)");
  check_at_least("nan-retries", o.nan_retries, 0);
  check_at_least("fid-every", o.fid_every, 0, " (0: no FID)");
  check_at_least("fid-n", o.fid_n, 2, " (a covariance needs two images)");
  FPA_CHECK(o.init_from.empty() || o.model.g.model == "unet", "--init-from ", o.init_from,
            ": only the U-Net model (a +unet preset) starts from a pretrained painter; this one is '",
            o.model.g.model, "'");
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
    double a = 0, b = 0;  // numbers compare by value: "0.00020000000000000001" is 0.0002
    if (it != saved.end() && parse_double(it->second, &a) && parse_double(v, &b) && a == b) continue;
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
