// lstm_fused_cases.cpp: the op cases of the fused LSTM recurrence (ops/lstm_recurrence.cpp): T > 1
// and B > 1, T = B = 1, and h0 computed from c0; the second order runs the composed fallback.
// Its other tests are in tests/test_lstm_fused.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// Gradcheck / gradgradcheck cases (tests/test_gradcheck.cpp runs them): xw (T, B, 4H), W_hh
// (4H, H), h0, c0 (B, H).
FPA_OP_CASE("lstm_recurrence", "lstm_recurrence_T3_B2_H3", {{3, 2, 12}, {12, 3}, {2, 3}, {2, 3}},
            [](const V& x) { return lstm_recurrence(x[0], x[1], x[2], x[3]); });
FPA_OP_CASE("lstm_recurrence", "lstm_recurrence_T1_B1_H2", {{1, 1, 8}, {8, 2}, {1, 2}, {1, 2}},
            [](const V& x) { return lstm_recurrence(x[0], x[1], x[2], x[3]); });
// h0 computed from c0: the second-order fallback must still take partial derivatives.
FPA_OP_CASE("lstm_recurrence", "lstm_recurrence_h0_from_c0", {{2, 2, 12}, {12, 3}, {2, 3}},
            [](const V& x) { return lstm_recurrence(x[0], x[1], tanh(x[2]), x[2]); });

}  // namespace
}  // namespace fpa::test
