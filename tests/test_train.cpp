// test_train.cpp: the trainer end to end on real Fashion-MNIST at a tiny size: a 30-step run
// writes everything a run folder shows; a resumed run is bit-identical to an uninterrupted
// one; the step a CUDA graph records is the eager step, bit for bit, and refuses host-side
// draws; inputs drawn ahead are rewound or left out of checkpoints; a failed capture falls
// back to eager steps; a failed save keeps the previous checkpoint; and the CLI refuses bad
// input with messages naming the flag, path or hyperparameter (through the built `fpa`
// binary, whose path `make test` passes in FPA_BIN).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "data/dataset_cache.h"
#include "nn/safetensors.h"
#include "ops/backend.h"
#include "tests/test_util.h"
#include "train/train_run.h"

namespace fpa::test {
namespace {

std::string temp_dir(const std::string& name) {
  std::string d = "/tmp/fpa_test_train_" + std::to_string(getpid()) + "_" + name;
  std::system(("rm -rf " + d + " && mkdir -p " + d).c_str());
  return d;
}

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && st.st_size > 0;
}

std::shared_ptr<const ImageDataset> fashion() {
  static auto data = std::make_shared<const ImageDataset>(load_dataset("fashion-mnist", 32, true));
  return data;
}

// cpu-small's family at a size that trains a step in milliseconds.
TrainOptions tiny(const std::string& out, int64_t steps) {
  TrainOptions o = train_defaults("cpu-small");
  o.model.g.hidden = 16, o.model.g.latent_dim = 16, o.model.g.steps = 8, o.model.g.mini_input = 8;
  o.model.d.fmap_max = 16, o.model.d.attn_heads = 1, o.model.d.attn_dim_head = 8;
  o.batch = 4, o.steps = steps, o.out = out;
  o.sample_every = 10, o.checkpoint_every = 10, o.log_every = 10;
  o.ema_start = 5, o.aug_prob = 0.5;
  return o;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(Train, ShortRunWritesTheRunFolder) {
  std::string dir = temp_dir("short");
  Trainer t(tiny(dir, 30), fashion());
  ASSERT_EQ(run_training(t, false), 0);
  EXPECT_EQ(t.steps_done(), 30);
  for (const char* f : {"last.safetensors", "samples.png", "samples_000030.png", "painting_steps.png", "painting.gif",
                        "interpolation.png", "metrics.csv", "loss_curve.svg"})
    EXPECT_TRUE(exists(dir + "/" + f)) << f;
  std::string csv = slurp(dir + "/metrics.csv");
  EXPECT_EQ(csv.rfind("step,seconds,d_loss,g_loss,gp,aux_loss,images_per_second\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 31);
  EXPECT_EQ(slurp(dir + "/painting.gif").substr(0, 6), "GIF89a");
  EXPECT_NE(slurp(dir + "/loss_curve.svg").find("<svg"), std::string::npos);
  nn::NamedTensors ck = nn::load_safetensors(dir + "/last.safetensors");
  EXPECT_EQ(ck.metadata.at("state.step"), "30");
  for (const char* name : {"G.kvb_net.weight", "GE.kvb_net.weight", "D.to_logits.3.weight", "opt.G.exp_avg", "opt.D.exp_avg_sq"})
    EXPECT_NE(ck.find(name), nullptr) << name;
  for (const auto& [name, t] : ck.tensors)
    for (double v : t.to_vector()) ASSERT_TRUE(std::isfinite(v)) << name;
}

TEST(Train, ResumeIsBitIdenticalToAnUninterruptedRun) {
  std::string a = temp_dir("straight"), b = temp_dir("resumed");
  {
    Trainer t(tiny(a, 12), fashion());
    ASSERT_EQ(run_training(t, false), 0);
  }
  {
    Trainer t(tiny(b, 7), fashion());
    ASSERT_EQ(run_training(t, false), 0);
  }
  {
    Trainer t(tiny(b, 12), fashion());
    t.load_checkpoint(b + "/last.safetensors");
    EXPECT_EQ(t.steps_done(), 7);
    ASSERT_EQ(run_training(t, true), 0);
  }
  EXPECT_TRUE(slurp(a + "/last.safetensors") == slurp(b + "/last.safetensors"))
      << "the resumed checkpoint differs from the uninterrupted one";
}

TEST(Train, ResumeWithAnotherConfigurationNamesTheHyperparameter) {
  std::string dir = temp_dir("mismatch");
  {
    Trainer t(tiny(dir, 2), fashion());
    ASSERT_EQ(run_training(t, false), 0);
  }
  TrainOptions other = tiny(dir, 4);
  other.lr = 1e-3;
  Trainer t(other, fashion());
  EXPECT_ERROR(t.load_checkpoint(dir + "/last.safetensors"), "train.lr (checkpoint: 0.0002");
}

TEST(Train, FailedSaveKeepsThePreviousCheckpoint) {
  std::string dir = temp_dir("failsave");
  Trainer t(tiny(dir, 2), fashion());
  ASSERT_EQ(run_training(t, false), 0);
  std::string before = slurp(dir + "/last.safetensors");
  mkdir((dir + "/last.safetensors.tmp").c_str(), 0755);  // the temporary file cannot be created
  t.step();
  EXPECT_ANY_THROW(t.save_checkpoint(dir + "/last.safetensors"));
  EXPECT_TRUE(slurp(dir + "/last.safetensors") == before);
}

// Every parameter of G, D and GE, in order, as host floats.
std::vector<std::vector<float>> all_parameters(Trainer& t) {
  std::vector<std::vector<float>> r;
  const std::vector<nn::Module*> modules = {t.generator().module.get(), &t.discriminator(),
                                            t.ema_generator().module.get()};
  for (nn::Module* m : modules)
    for (Tensor* p : m->parameters()) r.push_back(p->to_floats());
  return r;
}

// The step a CUDA graph records (fixed input buffers, losses summed on the device, Adam terms
// uploaded before it, a HostTrafficGuard around it) is the eager step: the same parameters to
// the bit, with and without the penalty, with gradient accumulation, and the same losses.
TEST(Train, CaptureReadyStepIsTheEagerStep) {
  for (int64_t rounds : {1, 2}) {
    SCOPED_TRACE("grad_accumulate " + std::to_string(rounds));
    TrainOptions o = tiny(temp_dir("capture"), 6);
    o.aug_prob = 0, o.grad_accumulate = rounds, o.gp_every = 2;
    Trainer eager(o, fashion()), ready(o, fashion());
    for (int s = 0; s < 6; ++s) {
      StepStats a = eager.step(), b = ready.step_capture_ready();
      const double tol = rounds == 1 ? 0.0 : 1e-6;  // two rounds: summed in float on the device, in double on the host
      EXPECT_NEAR(a.d_loss, b.d_loss, tol * std::abs(a.d_loss)) << "step " << s;
      EXPECT_NEAR(a.g_loss, b.g_loss, tol * std::abs(a.g_loss)) << "step " << s;
      EXPECT_NEAR(a.gp, b.gp, tol * std::abs(a.gp)) << "step " << s;
      EXPECT_NEAR(a.aux_loss, b.aux_loss, tol * std::abs(a.aux_loss)) << "step " << s;
      if (s % 2 == 0) {
        EXPECT_GT(b.gp, 0.0) << "step " << s << " should apply the penalty";
      }
    }
    EXPECT_EQ(ready.steps_done(), 6);
    EXPECT_TRUE(all_parameters(eager) == all_parameters(ready)) << "the parameters differ after 6 steps";
  }
}

// A captured run draws each next step's inputs ahead of time. Mixing in an eager step rewinds
// that draw, and a checkpoint saves the state from before it: both runs below are the
// all-eager run, bit for bit.
TEST(Train, InputsDrawnAheadAreRewoundAndNotCheckpointed) {
  TrainOptions o = tiny(temp_dir("ahead"), 6);
  o.aug_prob = 0;
  Trainer eager(o, fashion()), mixed(o, fashion()), first_half(o, fashion()), second_half(o, fashion());
  for (int s = 0; s < 6; ++s) eager.step();
  for (int s = 0; s < 6; ++s) (s == 3 ? mixed.step() : mixed.step_capture_ready());
  EXPECT_TRUE(all_parameters(mixed) == all_parameters(eager)) << "an eager step after drawn-ahead inputs";
  const std::string ckpt = o.out + "/ahead.safetensors";
  for (int s = 0; s < 3; ++s) first_half.step_capture_ready();
  first_half.save_checkpoint(ckpt);
  second_half.load_checkpoint(ckpt);
  for (int s = 3; s < 6; ++s) second_half.step_capture_ready();
  EXPECT_TRUE(all_parameters(second_half) == all_parameters(eager))
      << "resumed from a checkpoint saved with inputs drawn ahead";
}

// A backend that claims to capture but fails: the trainer says so, puts back what it drew,
// and trains eagerly from there, exactly as a run that never tried. (A stand-in registered
// as the CUDA device: the CPU backend with a capture_begin that throws.)
const Backend& failing_capture_backend() {
  static const Backend b = [] {
    Backend t = backend(Device::cpu);
    t.supports = [](const char*) { return true; };
    t.capture_begin = [] { fail("cudaStreamBeginCapture: operation not supported (test stand-in)"); };
    return t;
  }();
  return b;
}

TEST(Train, FailedCaptureFallsBackToEagerSteps) {
  const Backend* real_cuda = has_backend(Device::cuda) ? &backend(Device::cuda) : nullptr;
  register_backend(Device::cuda, &failing_capture_backend());
  TrainOptions o = tiny(temp_dir("failed_capture"), 6);
  o.aug_prob = 0;
  TrainOptions on_cuda = o;
  on_cuda.device = Device::cuda;
  {
    Trainer eager(o, fashion()), fallback(on_cuda, fashion());
    EXPECT_TRUE(fallback.uses_graphs());
    for (int s = 0; s < 6; ++s) {
      StepStats a = eager.step(), b = fallback.step();
      EXPECT_EQ(a.d_loss, b.d_loss) << "step " << s;
      EXPECT_EQ(a.g_loss, b.g_loss) << "step " << s;
    }
    EXPECT_FALSE(fallback.uses_graphs()) << "the failed capture should have turned graphs off";
    EXPECT_TRUE(all_parameters(eager) == all_parameters(fallback));
  }
  register_backend(Device::cuda, real_cuda);
}

// DiffAugment draws on the host inside the step, which a capture cannot replay: the guard
// says so (the trainer therefore runs such steps eagerly).
TEST(Train, CaptureReadyStepRefusesHostDrawnAugmentation) {
  TrainOptions o = tiny(temp_dir("capture_aug"), 2);
  o.aug_prob = 1.0;
  Trainer t(o, fashion());
  EXPECT_FALSE(t.uses_graphs());
  EXPECT_ERROR(t.step_capture_ready(), "rand inside a capture-ready training step");
}

// Runs the CLI; returns its exit code and stderr+stdout.
std::pair<int, std::string> fpa_cli(const std::string& args) {
  const char* bin = std::getenv("FPA_BIN");
  std::string out = "/tmp/fpa_test_cli_" + std::to_string(getpid()) + ".txt";
  int rc = std::system((std::string(bin) + " " + args + " > " + out + " 2>&1").c_str());
  return {WEXITSTATUS(rc), slurp(out)};
}

TEST(TrainCli, BadInputGetsClearMessages) {
  if (!std::getenv("FPA_BIN")) GTEST_SKIP() << "FPA_BIN not set (make test sets it)";
  std::string dir = temp_dir("cli");
  auto expect = [](const std::pair<int, std::string>& r, const std::string& needle) {
    EXPECT_NE(r.first, 0);
    EXPECT_NE(r.second.find(needle), std::string::npos) << "got: " << r.second;
  };
  expect(fpa_cli("train --data " + dir + "/nowhere --out " + dir + "/r"), dir + "/nowhere");
  expect(fpa_cli("train --size 48 --out " + dir + "/r"), "--size 48 contradicts preset cpu-small");
  expect(fpa_cli("train --image_size 48 --out " + dir + "/r"), "image size 48 is not a power of two");
  expect(fpa_cli("train --resume --out " + dir + "/none"), "no checkpoint at " + dir + "/none/last.safetensors");
  expect(fpa_cli("train --lr fast --out " + dir + "/r"), "--lr expects a number, got 'fast'");
  expect(fpa_cli("train --bogus 1 --out " + dir + "/r"), "unknown flag --bogus");
  if (!has_backend(Device::cuda)) expect(fpa_cli("train --device cuda --out " + dir + "/r"), "--device cuda");
}

}  // namespace
}  // namespace fpa::test
