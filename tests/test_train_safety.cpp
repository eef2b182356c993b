// test_train_safety.cpp: a run never destroys a good checkpoint. A non-finite loss stops the
// run (or retries from the last checkpoint) and keeps the checkpoint; non-finite state is never
// saved and never resumed from; checkpoint counters and option values are parsed strictly and
// range-checked, naming the key or flag; numbers are written shortest-round-trip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fpa/parse_number.h"
#include "nn/safetensors.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"
#include "train/train_run.h"

namespace fpa::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Overwrites G's first parameter with NaNs, as a step that diverged would have left it.
void poison_generator(Trainer& t) {
  Tensor* p = t.generator().module->parameters()[0];
  std::vector<float> nans(size_t(p->numel()), std::numeric_limits<float>::quiet_NaN());
  backend(p->device()).from_host(p->data(), nans.data(), nans.size() * sizeof(float));
}

// A run folder whose last.safetensors is at step 2 of `steps`, and a trainer resumed from it.
std::unique_ptr<Trainer> resumed_at_two(const std::string& dir, TrainOptions o) {
  {
    TrainOptions first = o;
    first.steps = 2;
    Trainer t(first, fashion());
    EXPECT_EQ(run_training(t, false), 0);
  }
  auto t = std::make_unique<Trainer>(o, fashion());
  t->load_checkpoint(dir + "/last.safetensors");
  return t;
}

TEST(TrainSafety, NonFiniteLossStopsTheRunAndKeepsTheLastCheckpoint) {
  const std::string dir = temp_dir("diverge");
  TrainOptions o = tiny(dir, 6);
  o.checkpoint_every = 1;
  auto t = resumed_at_two(dir, o);
  const std::string good = slurp(dir + "/last.safetensors");
  poison_generator(*t);
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_training(*t, true), kTrainingDiverged);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("stopped: the D loss is nan at step 3; " + dir + "/last.safetensors (step 2) is kept"),
            std::string::npos)
      << said;
  EXPECT_TRUE(slurp(dir + "/last.safetensors") == good) << "the good checkpoint was replaced";
  EXPECT_NE(slurp(dir + "/metrics.csv").find("\n3,"), std::string::npos) << "the step that diverged is logged";
}

TEST(TrainSafety, NanRetriesReloadTheLastCheckpointWithOtherDraws) {
  const std::string dir = temp_dir("retry");
  TrainOptions o = tiny(dir, 5);
  o.checkpoint_every = 1, o.nan_retries = 1;
  auto t = resumed_at_two(dir, o);
  poison_generator(*t);
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_training(*t, true), 0);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("the D loss is nan at step 3; retry 1 of 1 from " + dir + "/last.safetensors (step 2)"),
            std::string::npos)
      << said;
  EXPECT_EQ(t->steps_done(), 5);
  for (const auto& p : all_parameters(*t))
    for (float v : p) ASSERT_TRUE(std::isfinite(v));
  const std::string csv = slurp(dir + "/metrics.csv");
  EXPECT_EQ(csv.find("nan"), std::string::npos) << "the retried step's row is replaced:\n" << csv;
}

TEST(TrainSafety, NonFiniteStateIsNeverSaved) {
  const std::string dir = temp_dir("nosave");
  auto t = resumed_at_two(dir, tiny(dir, 4));
  const std::string good = slurp(dir + "/last.safetensors");
  poison_generator(*t);
  try {
    t->save_checkpoint(dir + "/last.safetensors");
    ADD_FAILURE() << "a checkpoint with NaN weights was written";
  } catch (const NonFiniteState& e) {
    EXPECT_NE(std::string(e.what()).find("G.") , std::string::npos) << e.what();
    EXPECT_NE(e.detail.find("non-finite values (of "), std::string::npos) << e.detail;
  }
  EXPECT_TRUE(slurp(dir + "/last.safetensors") == good);
}

// The checkpoint in dir with one tensor or one metadata value replaced.
void rewrite_checkpoint(const std::string& dir, const std::string& tensor, const std::string& key,
                        const std::string& value) {
  nn::NamedTensors f = nn::load_safetensors(dir + "/last.safetensors");
  for (auto& [name, t] : f.tensors)
    if (name == tensor) {
      std::vector<double> v = t.to_vector();
      v[0] = kNaN;
      t = from_vector(v, t.shape(), t.dtype());
    }
  if (!key.empty()) f.metadata[key] = value;
  nn::save_safetensors(dir + "/last.safetensors", f);
}

TEST(TrainSafety, ResumeRefusesANonFiniteCheckpoint) {
  const std::string dir = temp_dir("nanresume");
  resumed_at_two(dir, tiny(dir, 4));
  rewrite_checkpoint(dir, "opt.D.exp_avg_sq", "", "");
  Trainer t(tiny(dir, 4), fashion());
  EXPECT_ERROR(t.load_checkpoint(dir + "/last.safetensors"), "opt.D.exp_avg_sq holds 1 non-finite values");
}

TEST(TrainSafety, OptimiserStateMismatchesSayWhatDiffers) {
  const std::string dir = temp_dir("optstate");
  resumed_at_two(dir, tiny(dir, 4));
  const nn::NamedTensors original = nn::load_safetensors(dir + "/last.safetensors");
  // The checkpoint with one optimiser tensor changed, resumed.
  auto resume_with = [&](const std::string& name, const Tensor& replacement) {
    nn::NamedTensors f = original;
    for (auto& [n, t] : f.tensors)
      if (n == name) t = replacement;
    nn::save_safetensors(dir + "/last.safetensors", f);
    Trainer t(tiny(dir, 4), fashion());
    t.load_checkpoint(dir + "/last.safetensors");
  };
  EXPECT_ERROR(resume_with("opt.G.exp_avg", zeros({3})), "optimiser state 'opt.G.exp_avg' has shape (3) but");
  EXPECT_ERROR(resume_with("opt.D.exp_avg", original.find("opt.D.exp_avg")->to(DType::f64)),
               "optimiser state 'opt.D.exp_avg' is float64 but the model's parameters are float32");
}

TEST(TrainSafety, CheckpointCountersAreParsedStrictly) {
  const std::string dir = temp_dir("meta");
  resumed_at_two(dir, tiny(dir, 4));
  for (const char* bad : {"abc", "5abc", "1e3", "-1", "-5", "", " 5", "+5", "99999999999999999999"}) {
    rewrite_checkpoint(dir, "", "state.step", bad);
    Trainer t(tiny(dir, 4), fashion());
    EXPECT_ERROR(t.load_checkpoint(dir + "/last.safetensors"),
                 "last.safetensors: metadata 'state.step' must be a non-negative integer, got '" + std::string(bad) + "'");
  }
  rewrite_checkpoint(dir, "", "state.step", "2");
  rewrite_checkpoint(dir, "", "state.rng_seed", "-1");
  Trainer t(tiny(dir, 4), fashion());
  EXPECT_ERROR(t.load_checkpoint(dir + "/last.safetensors"), "metadata 'state.rng_seed' must be an unsigned");
}

TEST(TrainSafety, OptionsOutOfRangeAreRefusedNamingTheFlag) {
  auto refused = [](void (*edit)(TrainOptions&), const std::string& needle) {
    TrainOptions o = train_defaults("cpu-small");
    edit(o);
    EXPECT_ERROR(check_train_options(o), needle);
  };
  refused([](TrainOptions& o) { o.steps = -5; }, "--steps must be at least 1, got -5");
  refused([](TrainOptions& o) { o.aug_prob = 2; }, "--aug-prob must be in [0, 1], got 2");
  refused([](TrainOptions& o) { o.aug_prob = kNaN; }, "--aug-prob must be in [0, 1], got nan");
  refused([](TrainOptions& o) { o.gp_weight = kNaN; }, "--gp-weight must be in [0, inf)");
  refused([](TrainOptions& o) { o.gp_every = -1; }, "--gp-every must be at least 0 (0: no gradient penalty)");
  refused([](TrainOptions& o) { o.ema_start = -5; }, "--ema-start must be at least 0, got -5");
  refused([](TrainOptions& o) { o.lr = std::numeric_limits<double>::infinity(); }, "--lr must be a positive number");
  refused([](TrainOptions& o) { o.beta2 = 1; }, "--beta2 must be in [0, 1)");
  refused([](TrainOptions& o) { o.sample_every = -1; }, "--sample-every must be at least 0");
  refused([](TrainOptions& o) { o.init_from = "/nonexistent"; }, "--init-from /nonexistent: only the U-Net");
  TrainOptions zeros = train_defaults("cpu-small");
  zeros.sample_every = 0, zeros.checkpoint_every = 0, zeros.log_every = 0, zeros.gp_every = 0, zeros.ema_every = 0;
  EXPECT_NO_THROW(check_train_options(zeros)) << "0 means never (or at the end only)";
}

TEST(TrainSafety, EveryZeroMeansAtTheEndOnly) {
  const std::string dir = temp_dir("everyzero");
  TrainOptions o = tiny(dir, 3);
  o.sample_every = 0, o.checkpoint_every = 0, o.log_every = 0;
  Trainer t(o, fashion());
  ASSERT_EQ(run_training(t, false), 0);
  EXPECT_TRUE(exists(dir + "/last.safetensors"));
  EXPECT_TRUE(exists(dir + "/samples.png"));
  EXPECT_TRUE(exists(dir + "/samples_000003.png"));
  EXPECT_FALSE(exists(dir + "/samples_000001.png"));
}

TEST(TrainSafety, NumbersAreWrittenShortestAndComparedByValue) {
  TrainOptions o = train_defaults("cpu-small");
  const auto m = train_metadata(o);
  EXPECT_EQ(m.at("train.lr"), "0.0002");
  EXPECT_EQ(m.at("train.gp-weight"), "10");
  auto older = m;
  older["train.lr"] = "0.00020000000000000001";  // as earlier versions wrote it: the same number
  EXPECT_EQ(first_difference(older, m), "");
  auto other = m;
  other["train.lr"] = "0.001";
  EXPECT_EQ(first_difference(m, other), "train.lr (checkpoint: 0.0002, now: 0.001)");
}

TEST(ParseNumber, OnlyWholeNumbersInRange) {
  int64_t i = 7;
  for (const char* bad : {"", "abc", "5abc", "1e3", " 5", "5 ", "+5", "0x10", "1.0", "99999999999999999999"})
    EXPECT_FALSE(parse_int64(bad, &i)) << bad;
  EXPECT_EQ(i, 7);
  EXPECT_TRUE(parse_int64("-5", &i));
  EXPECT_EQ(i, -5);
  uint64_t u = 0;
  EXPECT_FALSE(parse_uint64("-1", &u));
  EXPECT_TRUE(parse_uint64("18446744073709551615", &u));
  EXPECT_EQ(u, ~uint64_t(0));
  double d = 0;
  EXPECT_TRUE(parse_double("2e-4", &d));
  EXPECT_EQ(d, 2e-4);
  EXPECT_FALSE(parse_double("2e-4x", &d));
  EXPECT_FALSE(parse_double(" 1", &d));
  EXPECT_EQ(shortest_decimal(0.0002), "0.0002");
  EXPECT_EQ(shortest_decimal(1e-8), "1e-08");
  EXPECT_EQ(shortest_decimal(450000), "450000");
}

}  // namespace
}  // namespace fpa::test
