// engine.h: the tape. An op records a Node when grad mode is on and an input requires grad;
// backward() and grad() walk the recorded nodes in reverse creation order, iteratively.
//
// Every node has exactly one output tensor. Its backward function receives the gradient of
// that output and returns one gradient per input (undefined where not needed, or a
// gradient_window where it is zero outside a window). Backward
// functions are written with the same differentiable ops as forwards, so with
// create_graph=true the gradients are recorded too and can be differentiated again.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace fpa {

// needs[i]: whether the gradient of input i is wanted; `out` is the node's output, with its
// history (usable in formulas such as tanh' = 1 - y^2) when the node saved it, else undefined.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out, const Tensor& out,
                                                     const std::vector<bool>& needs)>;

// Where an input's gradient goes: the node that made it, or the leaf that collects it.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  bool requires_grad = false;
  Shape shape;
};

struct Node : std::enable_shared_from_this<Node> {
  uint64_t seq = 0;                 // creation order
  const char* name = "";
  std::vector<Edge> inputs;
  BackwardFn backward;              // null once the graph was freed
  std::shared_ptr<TensorImpl> saved_output;  // output storage without grad_fn (no cycle)
  Shape out_shape;
  DType out_dtype = DType::f32;
  Device out_device = Device::cpu;
  void release() { backward = nullptr, saved_output.reset(); }
  ~Node();  // frees long chains iteratively, never by deep recursion
};

bool grad_enabled();
struct NoGradGuard {
  NoGradGuard();
  ~NoGradGuard();
  bool prev;
};
struct GradModeGuard {
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  bool prev;
};

// Attaches a node making `out` from `inputs` when grad mode is on and an input requires grad;
// returns `out` (marked requires_grad) either way. save_output: pass `out` to the backward.
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward,
              bool save_output = false);

// A gradient that is zero outside a window: `window` placed at `origin` in a tensor of shape
// `full`, as a slice's backward returns it. The engine collects the windows an input receives
// and writes them into one buffer, zero-filled only where they leave gaps, instead of padding
// each to the full shape and adding them: the k pieces of a split cost k copies, not k fills,
// k copies and k - 1 additions, and one buffer instead of k + 1. When the gradient is recorded,
// so is that writing (its backward slices each window's part). For backward functions only
// (the engine consumes it).
Tensor gradient_window(const Tensor& window, const Shape& full, const std::vector<int64_t>& origin);

// Accumulates d(loss)/d(leaf) into every reachable leaf's .grad(). `grad_out` defaults to
// ones for a single-element loss.
void backward(const Tensor& loss, const Tensor& grad_out = Tensor(), bool retain_graph = false,
              bool create_graph = false);

// The functional form: d(sum_i <outputs_i, grad_outputs_i>)/d(inputs_j), leaving .grad() alone.
// Inputs may be leaves or intermediate tensors. An input the outputs do not depend on gets an
// undefined tensor when allow_unused, else an error.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool create_graph = false, bool allow_unused = false);

}  // namespace fpa
