// test_train_graphs.cpp: the trainer's CUDA graph path, on the CPU. The step a graph records
// is the eager step, bit for bit, also with DiffAugment; inputs drawn ahead are rewound or
// left out of checkpoints; a failed capture falls back to eager steps. And the whole path
// as it runs on a GPU, on a stand-in for a GPU stream (tests/stream_standin.h: the CPU
// primitives queued, captured and replayed): replays with each next step queued before the
// last one's losses are read, and a whole pipelined run_training, give the eager CPU run.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <sstream>

#include "fpa/disc_attention.h"
#include "nn/safetensors.h"
#include "ops/backend/backend.h"
#include "tests/stream_standin.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"
#include "train/train_run.h"

namespace fpa::test {
namespace {

// Losses of the same step: equal, or within tol relative (two accumulation rounds are summed
// in float on the device, in double on the host).
void expect_same_losses(const StepStats& a, const StepStats& b, double tol, int step) {
  EXPECT_NEAR(a.d_loss, b.d_loss, tol * std::abs(a.d_loss)) << "step " << step;
  EXPECT_NEAR(a.g_loss, b.g_loss, tol * std::abs(a.g_loss)) << "step " << step;
  EXPECT_NEAR(a.gp, b.gp, tol * std::abs(a.gp)) << "step " << step;
  EXPECT_NEAR(a.aux_loss, b.aux_loss, tol * std::abs(a.aux_loss)) << "step " << step;
}

// Accumulation rounds and DiffAugment probability of the graph tests' runs.
struct RunKind {
  int64_t rounds;
  double aug_prob;
};
const RunKind kRunKinds[] = {{1, 0.0}, {2, 0.0}, {2, 0.6}};
std::string describe(const RunKind& k) {
  return "grad_accumulate " + std::to_string(k.rounds) + ", aug_prob " + std::to_string(k.aug_prob);
}

// The step a CUDA graph records (fixed input buffers, DiffAugment's choices as uploaded
// tensors, losses summed on the device, Adam terms uploaded before it, a HostTrafficGuard
// around it) is the eager step: the same parameters to the bit, with and without the penalty,
// with gradient accumulation and augmentation, and the same losses.
TEST(Train, CaptureReadyStepIsTheEagerStep) {
  for (const RunKind& kind : kRunKinds) {
    SCOPED_TRACE(describe(kind));
    const int64_t rounds = kind.rounds;
    TrainOptions o = tiny(temp_dir("capture"), 6);
    o.aug_prob = kind.aug_prob, o.grad_accumulate = rounds, o.gp_every = 2;
    Trainer eager(o, fashion()), ready(o, fashion());
    for (int s = 0; s < 6; ++s) {
      StepStats a = eager.step(), b = ready.step_capture_ready();
      expect_same_losses(a, b, rounds == 1 ? 0.0 : 1e-6, s);
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
  TrainOptions o = tiny(temp_dir("ahead"), 6);  // DiffAugment on: its draws are drawn ahead too
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
    t.capture_begin = [](void*) { fail("cudaStreamBeginCapture: operation not supported (test stand-in)"); };
    return t;
  }();
  return b;
}

TEST(Train, FailedCaptureFallsBackToEagerSteps) {
  const disc::CheckpointAttentionScope like_for_like(disc::CheckpointAttention::always);  // CPU and stand-in
  const Backend* real_cuda = has_backend(Device::cuda) ? &backend(Device::cuda) : nullptr;
  register_backend(Device::cuda, &failing_capture_backend());
  TrainOptions o = tiny(temp_dir("failed_capture"), 6);
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

// Graphs as on a GPU: steps 0 and 1 eager, 2 (penalty) and 3 captured, the EMA update captured
// at its first use, every later step a replay; each step queued before the previous one's
// losses are read. The losses and every parameter are those of the eager CPU run.
TEST(Train, GraphReplaysOnAQueuedStreamAreTheEagerRun) {
  const disc::CheckpointAttentionScope like_for_like(disc::CheckpointAttention::always);  // CPU and stand-in
  StreamStandinAsCuda standin;
  for (const RunKind& kind : kRunKinds) {
    SCOPED_TRACE(describe(kind));
    const int64_t rounds = kind.rounds;
    TrainOptions o = tiny(temp_dir("replays"), 10);
    o.aug_prob = kind.aug_prob, o.grad_accumulate = rounds, o.gp_every = 2;
    TrainOptions on_stream = o;
    on_stream.device = Device::cuda;
    const StreamStandinCounts before = stream_standin_counts();
    Trainer eager(o, fashion()), graphs(on_stream, fashion());
    ASSERT_TRUE(graphs.uses_graphs());
    std::optional<PendingStats> pending = graphs.step_async();
    for (int s = 0; s < 10; ++s) {
      StepStats a = eager.step();
      std::optional<PendingStats> next;
      if (s + 1 < 10) {
        const int64_t waits = stream_standin_counts().waits;
        next = graphs.step_async();
        if (s + 1 >= 2) {
          EXPECT_EQ(stream_standin_counts().waits, waits) << "step " << s + 1 << " waited for the device";
        }
      }
      expect_same_losses(a, pending->wait(), rounds == 1 ? 0.0 : 1e-6, s);
      pending = std::move(next);
    }
    EXPECT_TRUE(graphs.uses_graphs()) << "a capture failed (see stderr)";
    const StreamStandinCounts after = stream_standin_counts();
    EXPECT_EQ(after.captures - before.captures, 3) << "the step with and without the penalty, and the EMA update";
    EXPECT_GE(after.replays - before.replays, 8) << "steps 2 to 9";
    EXPECT_TRUE(all_parameters(eager) == all_parameters(graphs)) << "the parameters differ after 10 steps";
  }
  // The stand-in's memory is the CUDA allocator's: large blocks in its growing range, the two
  // kinds of step in one shared pool.
  EXPECT_GT(stream_standin_memory().bytes_in_range, 0u);
}

// Rows of metrics.csv without the timing columns (seconds, images/s).
std::vector<std::string> loss_rows(const std::string& csv_path) {
  std::vector<std::string> rows;
  std::istringstream in(slurp(csv_path));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    if (cells.size() >= 7) rows.push_back(cells[0] + "," + cells[2] + "," + cells[3] + "," + cells[4] + "," + cells[5]);
  }
  return rows;
}

// run_training with graphs on the queued stream (the next step queued while the host logs the
// last one, none queued past a step that writes pictures or a checkpoint) logs the losses and
// saves the checkpoint of the eager CPU run.
TEST(Train, PipelinedRunOnAQueuedStreamIsTheCpuRun) {
  const disc::CheckpointAttentionScope like_for_like(disc::CheckpointAttention::always);  // CPU and stand-in
  StreamStandinAsCuda standin;
  const std::string cpu_dir = temp_dir("pipelined_cpu"), stream_dir = temp_dir("pipelined_stream");
  TrainOptions o = tiny(cpu_dir, 12);  // DiffAugment on (p 0.5)
  o.sample_every = 5, o.checkpoint_every = 5;
  TrainOptions on_stream = o;
  on_stream.device = Device::cuda, on_stream.out = stream_dir;
  {
    Trainer cpu(o, fashion()), graphs(on_stream, fashion());
    ASSERT_EQ(run_training(cpu, false), 0);
    ASSERT_EQ(run_training(graphs, false), 0);
    EXPECT_TRUE(graphs.uses_graphs());
    EXPECT_TRUE(all_parameters(cpu) == all_parameters(graphs));
  }
  const std::vector<std::string> cpu_rows = loss_rows(cpu_dir + "/metrics.csv");
  EXPECT_EQ(cpu_rows.size(), 13u);
  EXPECT_EQ(cpu_rows, loss_rows(stream_dir + "/metrics.csv"));
  nn::NamedTensors a = nn::load_safetensors(cpu_dir + "/last.safetensors");
  nn::NamedTensors b = nn::load_safetensors(stream_dir + "/last.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
    EXPECT_TRUE(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector()) << a.tensors[i].first;
  }
  for (const char* picture : {"/samples_000005.png", "/samples_000010.png", "/painting_steps.png"})
    EXPECT_TRUE(slurp(cpu_dir + picture) == slurp(stream_dir + picture)) << picture << " differs";
  for (const char* key : {"state.step", "state.rng_seed", "state.rng_offset", "state.data_index", "state.opt_g_step"})
    EXPECT_EQ(a.metadata.at(key), b.metadata.at(key)) << key;
}

}  // namespace
}  // namespace fpa::test
