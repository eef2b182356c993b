// matmul_cases.cpp: the op cases of matmul (2-d, batched, broadcast batch), matmul_t (either
// operand transposed) and linear (ops/matmul.cpp). Their other tests are in tests/test_matmul.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("matmul", "matmul_2d", {{3, 4}, {4, 5}}, [](const V& x) { return matmul(x[0], x[1]); });
FPA_OP_CASE("matmul", "matmul_batched_broadcast", {{2, 3, 4}, {4, 2}}, [](const V& x) { return matmul(x[0], x[1]); });
FPA_OP_CASE("matmul", "matmul_batch_bcast_partial", {{2, 1, 2, 3}, {1, 3, 3, 2}},
            [](const V& x) { return matmul(x[0], x[1]); });
FPA_OP_CASE("matmul_t", "matmul_t_ta", {{2, 4, 3}, {2, 4, 5}}, [](const V& x) { return matmul_t(x[0], x[1], true, false); });
FPA_OP_CASE("matmul_t", "matmul_t_tb", {{3, 4}, {5, 4}}, [](const V& x) { return matmul_t(x[0], x[1], false, true); });
FPA_OP_CASE("matmul_t", "matmul_t_both", {{4, 3}, {5, 4}}, [](const V& x) { return matmul_t(x[0], x[1], true, true); });
FPA_OP_CASE("linear", "linear_bias", {{2, 3, 4}, {5, 4}, {5}}, [](const V& x) { return linear(x[0], x[1], x[2]); });
FPA_OP_CASE("linear", "linear_nobias", {{3, 4}, {2, 4}}, [](const V& x) { return linear(x[0], x[1]); });

}  // namespace
}  // namespace fpa::test
