// checkpoint_cases.cpp: the op cases of checkpoint(fn, inputs, params) (ops/checkpoint.cpp), with
// the block as an input and as a parameter that fn reads. Its other tests are in
// tests/test_checkpoint.cpp; the block is in case_helpers.h.
#include "tests/op_cases.h"
#include "tests/op_cases/case_helpers.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("checkpoint", "checkpoint_inputs", {{3, 4}, {4, 4}},
            [](const V& x) { return checkpoint([](const V& in) { return block(in[0], in[1]); }, {x[0], x[1]}, {}); });
FPA_OP_CASE("checkpoint", "checkpoint_parameter", {{3, 4}, {4, 4}}, [](const V& x) {
  static Tensor w;  // a parameter slot (it must outlive the backward), read by fn instead of passed in
  w = x[1];
  return checkpoint([](const V& in) { return block(in[0], w); }, {x[0]}, {&w});
});

}  // namespace
}  // namespace fpa::test
