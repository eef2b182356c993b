// op_util.h: helpers shared by the op families: raw (unrecorded) elementwise maps over the
// backend, broadcast index loops, and axis-list normalisation.
#pragma once
#include <functional>
#include <vector>

#include "autograd/error.h"
#include "ops/backend/backend.h"
#include "ops/ops.h"

namespace fpa {

// y = op(a) with no autograd record.
Tensor unary_map(const Tensor& a, UnaryOp op, double p0 = 0.0, double p1 = 0.0);
// a op b broadcast, with no autograd record; `name` is the op for error messages.
Tensor binary_map(const char* name, BinaryOp op, const Tensor& a, const Tensor& b);
// A loop over `out` with each operand's strides (0 where it broadcasts).
StridedLoop broadcast_loop(const Shape& out, const Shape& a, const Shape& b);
// Sorted, unique, non-negative axes; empty means all. Throws naming `op` when out of range.
std::vector<int> normalize_axes(const Axes& axes, const Shape& shape, const char* op);
// `shape` with the given axes set to 1 (keepdim form) or removed.
Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdim);

// Copies `src` (contiguous) into the window of `dst` starting at `origin` (ops/slice.cpp); no
// gradient is recorded.
void copy_into(const Tensor& src, Tensor& dst, const std::vector<int64_t>& origin);

// For a fused op's backward while a graph of the gradient is recorded: the gradients of
// <twin(inputs), grad_out> w.r.t. the needed inputs (undefined where not needed or unused),
// recorded, from the op's composed twin. Each needed input enters through an identity node
// and the nested grad() asks for those nodes, so it returns partial derivatives even when one
// input is computed from another, and never runs (nor frees) a node of the caller's graph.
// create_graph false (checkpoint's first-order backward): unrecorded, twin's graph freed.
// Grad mode must be on (twin's ops are recorded).
std::vector<Tensor> composed_twin_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& twin,
                                            const std::vector<Tensor>& inputs, const Tensor& grad_out,
                                            const std::vector<bool>& needs, bool create_graph = true);

}  // namespace fpa
