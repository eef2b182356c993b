// test_algorithm_choice.cpp: choosing a library algorithm with fallback
// (ops/backend/algorithm_choice.h, what cuda_conv.cu uses for cuDNN): the ranking (math type
// matching the one it runs under first, then deterministic ones where wanted, the offered order
// otherwise, repeats dropped), with TF32 off (everything runs under FMA math) and on (each under
// its own); then the choice: falling through unusable candidates at first use and remembering the
// one that ran, a remembered one failing later, none usable, and only the first tried when others
// may not be.
#include <string>
#include <vector>

#include "ops/backend/algorithm_choice.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

// cuDNN's cudnnMathType_t numbers.
constexpr int kDefaultMath = 0, kTensorOpMath = 1, kFmaMath = 3;

AlgorithmCandidate candidate(int algo, int math, bool deterministic) { return {algo, math, deterministic, 0}; }

// "algo/math/d" (or "/n" for non-deterministic) per candidate, in order.
std::string order(const std::vector<AlgorithmCandidate>& ranked) {
  std::string s;
  for (const AlgorithmCandidate& c : ranked)
    s += fmt::format("{}{}/{}/{}", s.empty() ? "" : " ", c.algo, c.math, c.deterministic ? "d" : "n");
  return s;
}

TEST(AlgorithmChoice, RankingWithTf32OffPutsFmaFirstThenDeterministic) {
  const std::vector<AlgorithmCandidate> offered = {candidate(1, kDefaultMath, true), candidate(2, kFmaMath, false),
                                                   candidate(3, kFmaMath, true), candidate(4, kDefaultMath, false),
                                                   candidate(5, kFmaMath, true)};
  // Everything runs under FMA math: FMA ones first; deterministic first within each group.
  EXPECT_EQ(order(rank_algorithms(offered, kFmaMath, true)), "3/3/d 5/3/d 2/3/n 1/3/d 4/3/n");
  // The forward direction does not ask for determinism: the offered order within each group.
  EXPECT_EQ(order(rank_algorithms(offered, kFmaMath, false)), "2/3/n 3/3/d 5/3/d 1/3/d 4/3/n");
}

TEST(AlgorithmChoice, RankingWithTf32OnKeepsEachMathAndOfferedOrder) {
  const std::vector<AlgorithmCandidate> offered = {candidate(1, kTensorOpMath, false), candidate(0, kDefaultMath, true),
                                                   candidate(1, kFmaMath, false), candidate(6, kTensorOpMath, true)};
  EXPECT_EQ(order(rank_algorithms(offered, kMathAsOffered, false)), "1/1/n 0/0/d 1/3/n 6/1/d");
  EXPECT_EQ(order(rank_algorithms(offered, kMathAsOffered, true)), "0/0/d 6/1/d 1/1/n 1/3/n");
}

TEST(AlgorithmChoice, RankingDropsACandidateThatWouldRunAsAnEarlierOne) {
  // With TF32 off algorithm 1 offered under default and under FMA math runs the same way twice.
  const std::vector<AlgorithmCandidate> offered = {candidate(1, kDefaultMath, true), candidate(1, kFmaMath, true),
                                                   candidate(2, kDefaultMath, true)};
  EXPECT_EQ(order(rank_algorithms(offered, kFmaMath, true)), "1/3/d 2/3/d");
  EXPECT_EQ(order(rank_algorithms({}, kFmaMath, true)), "");
}

TEST(AlgorithmChoice, FirstUseFallsThroughUnusableOnesAndRemembersTheOneThatRan) {
  const std::vector<AlgorithmCandidate> ranked = {candidate(7, kFmaMath, true), candidate(4, kFmaMath, true),
                                                  candidate(1, kFmaMath, true), candidate(0, kFmaMath, true)};
  AlgorithmChoice choice("conv2d forward");
  EXPECT_EQ(choice.chosen(), nullptr);
  std::vector<int> attempted;
  const auto attempt = [&](const AlgorithmCandidate& c) -> std::string {
    attempted.push_back(c.algo);
    if (c.algo == 7) return "CUDNN_STATUS_NOT_SUPPORTED";
    if (c.algo == 4) return "workspace of 123 bytes not available";
    return "";
  };
  choice.run(ranked, true, attempt);
  EXPECT_EQ(attempted, (std::vector<int>{7, 4, 1}));
  ASSERT_NE(choice.chosen(), nullptr);
  EXPECT_EQ(choice.chosen()->algo, 1);
  attempted.clear();
  choice.run(ranked, true, attempt);
  choice.run(ranked, false, attempt);
  EXPECT_EQ(attempted, (std::vector<int>{1, 1})) << "later runs use the remembered one directly";
}

TEST(AlgorithmChoice, ARememberedAlgorithmFailingLaterThrows) {
  const std::vector<AlgorithmCandidate> ranked = {candidate(2, kFmaMath, true), candidate(5, kFmaMath, true)};
  AlgorithmChoice choice("conv2d backward data");
  bool fails = false;
  int attempts = 0;
  const auto attempt = [&](const AlgorithmCandidate&) -> std::string {
    ++attempts;
    return fails ? "CUDNN_STATUS_EXECUTION_FAILED" : "";
  };
  choice.run(ranked, true, attempt);
  fails = true;
  EXPECT_ERROR(choice.run(ranked, true, attempt),
               "conv2d backward data: algo 2 (math type 3), which ran before, failed: CUDNN_STATUS_EXECUTION_FAILED");
  EXPECT_EQ(attempts, 2) << "the next candidate is not tried";
  EXPECT_EQ(choice.chosen()->algo, 2);
}

TEST(AlgorithmChoice, NoneUsableThrowsNamingEveryCandidatesReason) {
  const std::vector<AlgorithmCandidate> ranked = {candidate(1, kFmaMath, true), candidate(0, kDefaultMath, false)};
  AlgorithmChoice choice("conv2d backward filter for x (1, 2, 3, 4)");
  const auto attempt = [](const AlgorithmCandidate& c) -> std::string {
    return c.algo == 1 ? "CUDNN_STATUS_NOT_SUPPORTED" : "workspace of 4096 bytes not available";
  };
  EXPECT_ERROR(choice.run(ranked, true, attempt),
               "conv2d backward filter for x (1, 2, 3, 4): no algorithm ran: algo 1 (math type 3): "
               "CUDNN_STATUS_NOT_SUPPORTED; algo 0 (math type 0): workspace of 4096 bytes not available");
  EXPECT_EQ(choice.chosen(), nullptr);
  EXPECT_ERROR(choice.run({}, true, attempt), "no algorithm ran: none offered");
}

TEST(AlgorithmChoice, OnlyTheFirstIsTriedWhenOthersMayNotBe) {
  const std::vector<AlgorithmCandidate> ranked = {candidate(3, kFmaMath, true), candidate(8, kFmaMath, true),
                                                  candidate(9, kFmaMath, true)};
  AlgorithmChoice choice("conv2d forward");
  std::vector<int> attempted;
  const auto attempt = [&](const AlgorithmCandidate& c) -> std::string {
    attempted.push_back(c.algo);
    return c.algo == 3 ? "CUDNN_STATUS_NOT_SUPPORTED" : "";
  };
  EXPECT_ERROR(choice.run(ranked, false, attempt),
               "no algorithm ran: algo 3 (math type 3): CUDNN_STATUS_NOT_SUPPORTED (2 more not tried");
  EXPECT_EQ(attempted, (std::vector<int>{3}));
  EXPECT_EQ(choice.chosen(), nullptr);
  // Where others may be tried (eagerly, after a failed capture), the ranking falls through.
  choice.run(ranked, true, attempt);
  EXPECT_EQ(attempted, (std::vector<int>{3, 3, 8}));
  EXPECT_EQ(choice.chosen()->algo, 8);
}

}  // namespace
}  // namespace fpa::test
