// neighbourhood_cases.cpp: the op cases of the neighbourhood ops (ops/neighbourhood.cpp):
// neighbour_dot, neighbour_sum and neighbour_transpose, kernels 3 and 5 (on a map narrower than
// the kernel). Their other tests are in tests/test_neighbourhood.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("neighbour_dot", "neighbour_dot_3x3", {{2, 3, 4, 5}, {2, 3, 4, 5}},
            [](const V& x) { return neighbour_dot(x[0], x[1], 3); });
FPA_OP_CASE("neighbour_dot", "neighbour_dot_5x5_small_map", {{1, 2, 3, 2}, {1, 2, 3, 2}},
            [](const V& x) { return neighbour_dot(x[0], x[1], 5); });
FPA_OP_CASE("neighbour_sum", "neighbour_sum_3x3", {{2, 9, 4, 5}, {2, 3, 4, 5}},
            [](const V& x) { return neighbour_sum(x[0], x[1], 3); });
FPA_OP_CASE("neighbour_sum", "neighbour_sum_5x5_small_map", {{1, 25, 3, 2}, {1, 2, 3, 2}},
            [](const V& x) { return neighbour_sum(x[0], x[1], 5); });
FPA_OP_CASE("neighbour_transpose", "neighbour_transpose_3x3", {{2, 9, 4, 3}},
            [](const V& x) { return neighbour_transpose(x[0], 3); });
// The transpose inside a product, so its second order is exercised too.
FPA_OP_CASE("neighbour_transpose", "neighbour_transpose_squared", {{1, 9, 3, 4}},
            [](const V& x) { return square(neighbour_transpose(x[0], 3)); });

}  // namespace
}  // namespace fpa::test
