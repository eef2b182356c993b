// test_train_cli.cpp: `fpa train` and the checkpoint verbs as a user meets them, through the
// built binary (FPA_BIN, set by make test): bad input refused naming the flag, path or
// hyperparameter with one "fpa VERB:" prefix; the Makefile's resume line; one run per folder;
// SIGTERM and a second Ctrl-C; --version; generate's configuration keys and dtype conversion;
// warnings on non-finite weights. Runs use a folder of eight small PNGs, which loads at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "data/image_io.h"
#include "fpa/inception.h"
#include "nn/safetensors.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"
#include "train/run_lock.h"

extern char** environ;

namespace fpa::test {
namespace {

#define NEEDS_FPA_BIN() \
  if (!std::getenv("FPA_BIN")) GTEST_SKIP() << "FPA_BIN not set (make test sets it)"

// Eight 32x32 PNGs in dir/images, and the flags of a cpu-small run on them that takes a
// fraction of a second a step (its cache under dir/cache).
std::string small_run_flags(const std::string& dir) {
  const std::string images = dir + "/images";
  std::system(("mkdir -p " + images).c_str());
  for (int i = 0; i < 8; ++i) {
    Image im(32, 32, 1, uint8_t(30 * i));
    im.at(i, i, 0) = 255;
    write_png(images + "/im" + std::to_string(i) + ".png", im);
  }
  setenv("FPA_CACHE_DIR", (dir + "/cache").c_str(), 1);
  return "--preset cpu-small --data " + images + " --device cpu --batch 4 --hidden 16 --latent_dim 16 "
         "--d.fmap_max 16 --d.attn_heads 1 --d.attn_dim_head 8 --sample-every 0 --checkpoint-every 0";
}

void expect_refused(const std::pair<int, std::string>& r, const std::string& needle) {
  EXPECT_NE(r.first, 0) << r.second;
  EXPECT_NE(r.second.find(needle), std::string::npos) << "expected \"" << needle << "\", got: " << r.second;
  EXPECT_EQ(r.second.find("fpa: fpa "), std::string::npos) << "a doubled prefix: " << r.second;
}

TEST(TrainCli, BadInputGetsClearMessages) {
  NEEDS_FPA_BIN();
  std::string dir = temp_dir("cli");
  expect_refused(fpa_cli("train --data " + dir + "/nowhere --out " + dir + "/r"), dir + "/nowhere");
  expect_refused(fpa_cli("train --size 48 --out " + dir + "/r"), "--size 48 contradicts preset cpu-small");
  expect_refused(fpa_cli("train --image_size 48 --out " + dir + "/r"), "image size 48 is not a power of two");
  expect_refused(fpa_cli("train --resume --out " + dir + "/none"),
                 "fpa train --resume: no checkpoint at " + dir + "/none/last.safetensors");
  expect_refused(fpa_cli("train --lr fast --out " + dir + "/r"), "fpa train: --lr expects a number, got 'fast'");
  expect_refused(fpa_cli("train --bogus 1 --out " + dir + "/r"), "unknown flag --bogus");
  if (!has_backend(Device::cuda)) expect_refused(fpa_cli("train --device cuda --out " + dir + "/r"), "--device cuda");
}

// --version: a line per device, the CPU's with the OpenMP threads asked for, counted after the
// BLAS is loaded (an OpenMP OpenBLAS sets the caller's count to 1 unless it is put back).
TEST(TrainCli, VersionNamesEachDeviceWithTheThreadsAsked) {
  const char* before = std::getenv("OMP_NUM_THREADS");
  const std::string saved = before ? before : "";
  setenv("OMP_NUM_THREADS", "3", 1);
  const auto [rc, out] = fpa_cli("--version");
  if (before) setenv("OMP_NUM_THREADS", saved.c_str(), 1);
  else unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\ncpu: OpenMP, 3 threads; GEMM: "), std::string::npos) << out;
  EXPECT_NE(out.find("\ncuda: "), std::string::npos) << out;
}

TEST(TrainCli, MeaninglessValuesAreRefusedNamingTheRange) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_values"), out = " --out " + dir + "/r";
  const std::pair<const char*, const char*> cases[] = {
      {"--steps -5", "fpa train: --steps must be at least 1, got -5"},
      {"--aug-prob 2", "--aug-prob must be in [0, 1], got 2"},
      {"--aug-prob nan", "--aug-prob must be in [0, 1], got nan"},
      {"--gp-weight nan", "--gp-weight must be in [0, inf), got nan"},
      {"--gp-every -1", "--gp-every must be at least 0 (0: no gradient penalty), got -1"},
      {"--ema-start -5", "--ema-start must be at least 0, got -5"},
      {"--lr inf", "--lr must be a positive number, got inf"},
      {"--sample-every -1", "--sample-every must be at least 0"},
      {"--checkpoint-every -2", "--checkpoint-every must be at least 0"},
      {"--init-from /nonexistent", "--init-from /nonexistent: only the U-Net model"},
      {"--preset cpu-small+unet --init-from /nonexistent", "--init-from /nonexistent: No such file or directory"},
      {"--batch 1e3", "--batch expects an integer, got '1e3'"},
  };
  for (const auto& [flags, needle] : cases) expect_refused(fpa_cli(std::string("train ") + flags + out), needle);
  EXPECT_FALSE(exists(dir + "/r")) << "a refused run leaves no folder";
}

TEST(TrainCli, TheMakefilesResumeLineContinuesTheRun) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_resume"), flags = small_run_flags(dir) + " --out " + dir + "/r";
  auto first = fpa_cli("train " + flags + " --steps 2");
  ASSERT_EQ(first.first, 0) << first.second;
  // `make train` again: the same flags, --resume added, a later --steps.
  auto again = fpa_cli("train " + flags + " --resume --steps 3");
  EXPECT_EQ(again.first, 0) << again.second;
  EXPECT_NE(again.second.find("resumed at step 2"), std::string::npos) << again.second;
  expect_refused(fpa_cli("train " + flags + " --resume --steps 4 --lr 0.001"),
                 "was trained with another configuration: train.lr (checkpoint: 0.0002, now: 0.001)");
  expect_refused(fpa_cli("train --out " + dir + "/r --resume --preset grey32-T32"),
                 "preset (checkpoint: cpu-small, now: grey32-T32)");
  expect_refused(fpa_cli("train --out " + dir + "/r --resume --hidden 32"), "g.hidden (checkpoint: 16, now: 32)");
  expect_refused(fpa_cli("train " + flags + " --steps 4"),
                 dir + "/r already holds a run (" + dir + "/r/last.safetensors): continue it with the same command "
                       "and --resume");
}

TEST(TrainCli, OneRunPerOutputFolder) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_lock"), flags = small_run_flags(dir) + " --out " + dir + "/r";
  std::system(("mkdir -p " + dir + "/r").c_str());
  {
    RunLock held(dir + "/r");  // another run, alive
    expect_refused(fpa_cli("train " + flags + " --steps 1"),
                   dir + "/r is in use by another training run (pid " + std::to_string(getpid()) + " on ");
  }
  // The lock of a run that died (its text left, its flock gone with it) is taken over.
  std::system(("echo 'pid 999999 on elsewhere, started long ago' > " + dir + "/r/.lock").c_str());
  auto r = fpa_cli("train " + flags + " --steps 1");
  EXPECT_EQ(r.first, 0) << r.second;
}

// Starts `fpa train ARGS` in the background, output to `log`; returns its pid.
pid_t spawn_train(const std::string& args, const std::string& log) {
  const std::string command = "exec " + std::string(std::getenv("FPA_BIN")) + " train " + args + " > " + log + " 2>&1";
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  return pid;
}

// Waits (up to a minute) until metrics.csv in dir has at least one step.
bool wait_for_a_step(const std::string& dir) {
  for (int i = 0; i < 600; ++i) {
    std::string csv = exists(dir + "/metrics.csv") ? slurp(dir + "/metrics.csv") : "";
    if (std::count(csv.begin(), csv.end(), '\n') >= 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// A long run of the small configuration in dir/r, started in the background (its output in
// dir/log), once it has logged a step. The caller always signals it: it never ends by itself.
pid_t long_run_after_a_step(const std::string& dir) {
  pid_t pid = spawn_train(small_run_flags(dir) + " --steps 100000 --out " + dir + "/r", dir + "/log");
  EXPECT_TRUE(wait_for_a_step(dir + "/r")) << slurp(dir + "/log");
  return pid;
}

int exit_code_of(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(TrainCli, SigtermSavesACheckpointAndSaysSo) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_term"), run = dir + "/r";
  pid_t pid = long_run_after_a_step(dir);
  kill(pid, SIGTERM);
  EXPECT_EQ(exit_code_of(pid), 128 + SIGTERM);
  const std::string log = slurp(dir + "/log");
  EXPECT_NE(log.find("SIGTERM: saving a checkpoint after this step"), std::string::npos) << log;
  EXPECT_NE(log.find("terminated at step"), std::string::npos) << log;
  ASSERT_TRUE(exists(run + "/last.safetensors")) << log;
  const int64_t saved = std::stoll(nn::load_safetensors(run + "/last.safetensors").metadata.at("state.step"));
  EXPECT_GE(saved, 1);
  EXPECT_NE(log.find("terminated at step " + std::to_string(saved) + ";"), std::string::npos) << log;
}

TEST(TrainCli, ASecondInterruptExitsAtOnceAndSaysSo) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_int"), run = dir + "/r";
  pid_t pid = long_run_after_a_step(dir);
  kill(pid, SIGINT);
  kill(pid, SIGTERM);  // a second SIGINT sent now could merge with the first, still pending
  const int code = exit_code_of(pid);
  EXPECT_TRUE(code == 128 + SIGINT || code == 128 + SIGTERM) << code;
  const std::string log = slurp(dir + "/log");
  EXPECT_NE(log.find("second signal: exiting now without saving"), std::string::npos) << log;
  EXPECT_FALSE(exists(run + "/last.safetensors.tmp." + std::to_string(pid))) << "a temporary file was left";
}

TEST(TrainCli, GenerateTakesKeysWithoutPresetAndConvertsTheDtype) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_generate"), run = dir + "/r";
  auto trained = fpa_cli("train " + small_run_flags(dir) + " --steps 2 --out " + run);
  ASSERT_EQ(trained.first, 0) << trained.second;
  nn::save_safetensors(dir + "/z.safetensors", {{"z", zeros({2, 16})}}, {});
  const std::string io = " --ckpt " + run + "/last.safetensors --latents " + dir + "/z.safetensors --out " + dir + "/o";
  auto f64 = fpa_cli("generate" + io + ".safetensors --dtype float64 --ema");
  EXPECT_EQ(f64.first, 0) << f64.second;
  EXPECT_EQ(nn::load_safetensors(dir + "/o.safetensors").find("images")->dtype(), DType::f64);
  auto keys = fpa_cli("generate" + io + "2.safetensors --hidden 16");
  EXPECT_EQ(keys.first, 0) << keys.second;
  // Weights without configuration metadata (a PyTorch export): said before building a model.
  nn::NamedTensors ck = nn::load_safetensors(run + "/last.safetensors");
  nn::save_safetensors(dir + "/export.safetensors", ck.tensors, {});
  expect_refused(fpa_cli("generate --ckpt " + dir + "/export.safetensors --latents " + dir + "/z.safetensors --out " +
                         dir + "/o3.safetensors"),
                 "fpa generate: " + dir + "/export.safetensors carries no model configuration (a PyTorch export?); "
                 "pass --preset NAME");
  expect_refused(fpa_cli("sample --ckpt " + dir + "/export.safetensors --out " + dir + "/s.png"),
                 "carries no model configuration (a PyTorch export?)");
}

TEST(TrainCli, NonFiniteWeightsGetAWarningWhenSampled) {
  NEEDS_FPA_BIN();
  const std::string dir = temp_dir("cli_nanweights"), run = dir + "/r";
  auto trained = fpa_cli("train " + small_run_flags(dir) + " --steps 2 --out " + run);
  ASSERT_EQ(trained.first, 0) << trained.second;
  nn::NamedTensors ck = nn::load_safetensors(run + "/last.safetensors");
  for (auto& [name, t] : ck.tensors)
    if (name.rfind("GE.", 0) == 0) t = full(t.shape(), std::numeric_limits<double>::quiet_NaN(), t.dtype());
  nn::save_safetensors(dir + "/nan.safetensors", ck);
  auto r = fpa_cli("sample --ckpt " + dir + "/nan.safetensors --n 2 --out " + dir + "/s.png");
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("fpa sample: warning: " + dir + "/nan.safetensors: GE."), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("non-finite values"), std::string::npos) << r.second;
}

// --fid-every: FID, KID and KID's std in metrics.csv at the measured steps only (and at the
// end), fid_curve.svg, best.safetensors, the FID on the progress line; on resume the real
// images' features come from the cache and the earlier columns are kept.
TEST(TrainCli, FidEveryMeasuresKeepsTheBestAndResumes) {
  NEEDS_FPA_BIN();
  REQUIRE_FID_WEIGHTS();
  const std::string dir = temp_dir("cli_fid"), flags = small_run_flags(dir) + " --out " + dir + "/r";
  auto first = fpa_cli("train " + flags + " --steps 2 --fid-every 2 --fid-n 4 --log-every 1");
  ASSERT_EQ(first.first, 0) << first.second;
  EXPECT_NE(first.second.find("FID and KID every 2 steps: 4 images of the EMA generator against 8 of"),
            std::string::npos) << first.second;
  EXPECT_NE(first.second.find("  FID "), std::string::npos) << first.second;
  EXPECT_TRUE(exists(dir + "/r/best.safetensors"));
  EXPECT_TRUE(exists(dir + "/r/fid_curve.svg"));
  // Each line's fields from the eighth on (fid, kid, kid_std), joined with commas.
  auto fid_columns = [&] {
    std::vector<std::string> lines;
    std::istringstream csv(slurp(dir + "/r/metrics.csv"));
    for (std::string line; std::getline(csv, line);) {
      size_t pos = 0;
      for (int comma = 0; comma < 7 && pos != std::string::npos; ++comma) pos = line.find(',', pos) + 1;
      lines.push_back(pos == std::string::npos || pos == 0 ? "" : line.substr(pos));
    }
    return lines;
  };
  std::vector<std::string> columns = fid_columns();
  ASSERT_EQ(columns.size(), 3u);
  EXPECT_EQ(columns[0], "fid,kid,kid_std");
  EXPECT_EQ(columns[1], ",,");  // step 1: not measured
  EXPECT_NE(columns[2], ",,");  // step 2
  auto again = fpa_cli("train " + flags + " --resume --steps 3 --fid-every 2 --fid-n 4");
  ASSERT_EQ(again.first, 0) << again.second;
  EXPECT_NE(again.second.find("(cached features)"), std::string::npos) << again.second;
  std::vector<std::string> resumed = fid_columns();
  ASSERT_EQ(resumed.size(), 4u);
  EXPECT_EQ(resumed[2], columns[2]);
  EXPECT_NE(resumed[3], ",,");  // step 3, the end
}

}  // namespace
}  // namespace fpa::test
