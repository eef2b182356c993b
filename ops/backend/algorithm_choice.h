// algorithm_choice.h: choosing a library's algorithm for one operation, with fallback (used for
// cuDNN's three convolution directions, ops/backend/cuda/cuda_conv.cu). rank_algorithms orders what
// the library's heuristics offer; AlgorithmChoice tries the ranked candidates in order at first
// use, remembers the first that runs and uses it from then on. Plain C++ (no CUDA): the CPU suite
// tests it (tests/test_algorithm_choice.cpp). It knows nothing of what a number means: the
// algorithm and math type are the library's enumerators as ints.
#pragma once
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/error.h"

namespace fpa {

struct AlgorithmCandidate {
  int algo = 0;                // the library's number for the algorithm
  int math = 0;                // the math type it is offered under; after rank_algorithms, the one it runs under
  bool deterministic = false;  // the same bits on every run
  size_t workspace = 0;        // bytes, the heuristics' estimate
};

// For rank_algorithms: every candidate runs under the math type it is offered under.
constexpr int kMathAsOffered = -1;

// The candidates in the order to try them, each with `math` set to the math type it runs under:
// run_math for all of them, or each its own with kMathAsOffered. Those offered under the math
// type they run under come first, the others after as a last resort; within each group the
// deterministic ones come first when want_deterministic; otherwise the offered order is kept.
// A candidate that would run as an earlier one does (same algorithm and math type) is dropped.
// Callers leave out before what the library rejected or what needs too large a workspace.
inline std::vector<AlgorithmCandidate> rank_algorithms(std::vector<AlgorithmCandidate> offered, int run_math,
                                                       bool want_deterministic) {
  const auto group = [&](const AlgorithmCandidate& c) {
    const bool math_differs = run_math != kMathAsOffered && c.math != run_math;
    return 2 * int(math_differs) + int(want_deterministic && !c.deterministic);
  };
  std::stable_sort(offered.begin(), offered.end(),
                   [&](const AlgorithmCandidate& a, const AlgorithmCandidate& b) { return group(a) < group(b); });
  std::vector<AlgorithmCandidate> ranked;
  for (AlgorithmCandidate c : offered) {
    if (run_math != kMathAsOffered) c.math = run_math;
    const bool repeats = std::any_of(ranked.begin(), ranked.end(), [&](const AlgorithmCandidate& r) {
      return r.algo == c.algo && r.math == c.math;
    });
    if (!repeats) ranked.push_back(c);
  }
  return ranked;
}

// The algorithm one operation uses: none until the first candidate that runs, then that one.
class AlgorithmChoice {
 public:
  // `what` opens its error messages: the operation and its shapes.
  explicit AlgorithmChoice(std::string what) : what_(std::move(what)) {}

  // Runs the operation: attempt(candidate) runs it with the candidate and returns "" when it
  // ran, else why the candidate is unusable (errors that say nothing about the candidate, it
  // throws itself). Once one has run, only that one is attempted, and a reason then throws: it
  // ran before, so the failure is a real error. Until then the ranked candidates are attempted
  // in order (only the first unless may_try_others) and the first that runs is remembered; when
  // none runs, throws naming each one attempted and its reason.
  template <typename Attempt>
  void run(const std::vector<AlgorithmCandidate>& ranked, bool may_try_others, Attempt&& attempt) {
    if (chosen_) {
      const std::string reason = attempt(*chosen_);
      if (!reason.empty()) fail(what_, ": ", name(*chosen_), ", which ran before, failed: ", reason);
      return;
    }
    const size_t tries = may_try_others ? ranked.size() : std::min<size_t>(ranked.size(), 1);
    std::string reasons;
    for (size_t i = 0; i < tries; ++i) {
      const std::string reason = attempt(ranked[i]);
      if (reason.empty()) {
        chosen_ = ranked[i];
        return;
      }
      reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", name(ranked[i]), reason);
    }
    const size_t untried = ranked.size() - tries;
    const std::string not_tried = untried ? fmt::format(" ({} more not tried now)", untried) : "";
    fail(what_, ": no algorithm ran: ", ranked.empty() ? "none offered" : reasons, not_tried);
  }

  // The remembered candidate, nullptr before one has run.
  const AlgorithmCandidate* chosen() const { return chosen_ ? &*chosen_ : nullptr; }

 private:
  static std::string name(const AlgorithmCandidate& c) { return fmt::format("algo {} (math type {})", c.algo, c.math); }

  std::string what_;
  std::optional<AlgorithmCandidate> chosen_;
};

}  // namespace fpa
