// local_attention_cases.cpp: the op cases of the fused local attention (ops/local_attention.cpp),
// 3x3 and a 5x5 kernel on a map smaller than it. Its other tests are in
// tests/test_local_attention.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("local_attention", "local_attention_3x3", {{2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}},
            [](const V& x) { return local_attention(x[0], x[1], x[2], 3); });
FPA_OP_CASE("local_attention", "local_attention_5x5_small_map", {{1, 2, 3, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}},
            [](const V& x) { return local_attention(x[0], x[1], x[2], 5); });

}  // namespace
}  // namespace fpa::test
