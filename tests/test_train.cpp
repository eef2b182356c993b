// test_train.cpp: the trainer end to end on real Fashion-MNIST at a tiny size: a 30-step run
// writes everything a run folder shows; a resumed run is bit-identical to an uninterrupted
// one; a failed save keeps the previous checkpoint; metrics.csv is read in both row formats.
// The CLI: test_train_cli.cpp; divergence and strict parsing: test_train_safety.cpp; the CUDA
// graph path: test_train_graphs.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "autograd/atomic_file.h"
#include "nn/safetensors.h"
#include "ops/backend/backend.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"
#include "train/metrics.h"
#include "train/train_run.h"

namespace fpa::test {
namespace {

// metrics.csv on resume: rows of the format before FID (7 fields) read with no FID; rows with
// FID, KID and its std keep them; rows after the resumed step are dropped; best_fid is the lowest.
TEST(Train, MetricsLogReadsBothRowFormats) {
  const std::string dir = temp_dir("metrics_formats");
  write_file_atomically(dir + "/metrics.csv",
                        "step,seconds,d_loss,g_loss,gp,aux_loss,images_per_second\n"
                        "1,0.5,1,2,3,4,10\n"
                        "2,1.0,1,2,0,4,10,55.5,0.25,0.01\n"
                        "3,1.5,1,2,0,4,10,,,\n"
                        "4,2.0,1,2,0,4,10,44.25,0.125,0.02\n"
                        "5,2.5,1,2,0,4,10,33,0.1,0.01\n");
  MetricsLog log(dir, true, 4);
  ASSERT_EQ(log.rows().size(), 4u);
  EXPECT_TRUE(std::isnan(log.rows()[0].fid));
  EXPECT_EQ(log.rows()[1].fid, 55.5);
  EXPECT_EQ(log.rows()[1].kid, 0.25);
  EXPECT_EQ(log.rows()[1].kid_std, 0.01);
  EXPECT_TRUE(std::isnan(log.rows()[2].kid));
  EXPECT_EQ(log.best_fid(), 44.25);
  EXPECT_EQ(slurp(dir + "/metrics.csv"), "step,seconds,d_loss,g_loss,gp,aux_loss,images_per_second,fid,kid,kid_std\n"
                                          "1,0.500,1,2,3,4,10.00,,,\n"
                                          "2,1.000,1,2,0,4,10.00,55.5,0.25,0.01\n"
                                          "3,1.500,1,2,0,4,10.00,,,\n"
                                          "4,2.000,1,2,0,4,10.00,44.25,0.125,0.02\n");
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
  EXPECT_EQ(csv.rfind("step,seconds,d_loss,g_loss,gp,aux_loss,images_per_second,fid,kid,kid_std\n", 0), 0u);
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
  mkdir((dir + "/last.safetensors.tmp." + std::to_string(getpid())).c_str(), 0755);  // no temporary file
  t.step();
  EXPECT_ANY_THROW(t.save_checkpoint(dir + "/last.safetensors"));
  EXPECT_TRUE(slurp(dir + "/last.safetensors") == before);
}

}  // namespace
}  // namespace fpa::test
