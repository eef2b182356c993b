// channel_norm_cases.cpp: the op cases of the fused channel norm (ops/channel_norm.cpp), one with
// many channels and one with two channels and a large eps; the second order runs the composed
// fallback. Its other tests are in tests/test_channel_norm.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// Gradcheck / gradgradcheck cases (tests/test_gradcheck.cpp runs them): x (N, C, H, W), g, b (1, C, 1, 1).
FPA_OP_CASE("channel_norm", "channel_norm_N2_C5", {{2, 5, 3, 2}, {1, 5, 1, 1}, {1, 5, 1, 1}},
            [](const V& x) { return channel_norm(x[0], x[1], x[2], 1e-5); });
FPA_OP_CASE("channel_norm", "channel_norm_C2_large_eps", {{1, 2, 2, 3}, {1, 2, 1, 1}, {1, 2, 1, 1}},
            [](const V& x) { return channel_norm(x[0], x[1], x[2], 0.5); });

}  // namespace
}  // namespace fpa::test
