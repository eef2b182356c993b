// engine.cpp: recording nodes and running them backwards (backward() and grad()).
//
// The walk: collect the nodes reachable from the outputs (explicit stack, no recursion),
// mark which ones lead to a wanted input, then run them in decreasing creation order, so a
// node runs only after every consumer of its output has delivered its gradient. What a node
// receives waits as a dense sum plus the windows slices returned (gradient_window), made whole
// in one buffer when the node runs.
#include "autograd/engine.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "autograd/error.h"
#include "ops/op_util.h"

namespace fpa {

static thread_local bool g_grad_enabled = true;
static std::atomic<uint64_t> g_next_seq{1};

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev; }
GradModeGuard::GradModeGuard(bool enabled) : prev(g_grad_enabled) { g_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { g_grad_enabled = prev; }

Node::~Node() {
  // Nodes whose last owner goes away here are destroyed from this loop, one level deep,
  // instead of recursively through a chain that may be thousands of nodes long.
  thread_local bool draining = false;
  thread_local std::vector<std::shared_ptr<Node>> pending;
  bool owner = !draining;
  draining = true;
  release();
  for (Edge& e : inputs)
    if (e.fn) pending.push_back(std::move(e.fn));
  if (owner) {
    while (!pending.empty()) {
      std::shared_ptr<Node> n = std::move(pending.back());
      pending.pop_back();
    }
    draining = false;
  }
}

Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn,
              bool save_output) {
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->seq = g_next_seq++;
  node->name = name;
  node->backward = std::move(fn);
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  node->out_device = out.device();
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined()) {
      e.requires_grad = t.requires_grad();
      e.shape = t.shape();
      if (e.requires_grad) {
        if (t.grad_fn()) e.fn = t.grad_fn();
        else e.leaf = t.impl_ptr();
      }
    }
    node->inputs.push_back(std::move(e));
  }
  // The output handed to users is a fresh impl sharing out's storage, with this node.
  Tensor result = alias(out, out.shape());
  result.impl()->requires_grad = true;
  result.impl()->grad_fn = node;
  if (save_output) node->saved_output = alias(out, out.shape()).impl_ptr();
  return result;
}

namespace {

// Collects every node reachable from roots, sorted newest first.
std::vector<Node*> reachable(const std::vector<Node*>& roots) {
  std::vector<Node*> out, stack(roots);
  std::unordered_set<Node*> seen(roots.begin(), roots.end());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    out.push_back(n);
    for (const Edge& e : n->inputs)
      if (e.fn && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  }
  std::sort(out.begin(), out.end(), [](Node* a, Node* b) { return a->seq > b->seq; });
  return out;
}

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

// ---- gradient windows (gradient_window): returned by backward functions, taken here.

struct Window {
  Tensor values;                // the window's gradient
  std::vector<int64_t> origin;  // its first index in the full tensor
};
struct WindowReturn {
  Tensor handle;  // what the backward function returned (kept, so its impl is not reused)
  Shape full;
  Window window;
};
thread_local std::unordered_map<const TensorImpl*, WindowReturn> t_windows;

// The window `g` stands for, if it came from gradient_window (then forgotten).
bool take_window(const Tensor& g, Shape& full, Window& w) {
  if (t_windows.empty() || !g.defined()) return false;
  auto it = t_windows.find(g.impl());
  if (it == t_windows.end()) return false;
  full = it->second.full, w = std::move(it->second.window);
  t_windows.erase(it);
  return true;
}

bool overlap(const Window& a, const Window& b) {
  for (int d = 0; d < a.values.ndim(); ++d)
    if (a.origin[d] + a.values.dim(d) <= b.origin[d] || b.origin[d] + b.values.dim(d) <= a.origin[d]) return false;
  return true;
}

// The part of `g` a window covers.
Tensor window_of(const Tensor& g, const std::vector<int64_t>& origin, const Shape& shape) {
  Tensor part = g;
  for (int d = 0; d < g.ndim(); ++d)
    if (shape[d] != g.dim(d)) part = slice(part, d, origin[d], origin[d] + shape[d]);
  return part;
}

// Disjoint windows written into one buffer of `shape` (zeros only where they leave gaps).
// Recorded when the gradient is (create_graph): its backward hands each window its part.
Tensor assemble(const std::vector<Window>& windows, const Shape& shape, int64_t covered) {
  const Tensor& first = windows[0].values;
  Tensor whole = covered == shape.numel() ? empty(shape, first.dtype(), first.device())
                                          : zeros(shape, first.dtype(), first.device());
  std::vector<Tensor> parts;
  std::vector<std::vector<int64_t>> origins;
  std::vector<Shape> shapes;
  for (const Window& w : windows) {
    copy_into(w.values, whole, w.origin);
    parts.push_back(w.values), origins.push_back(w.origin), shapes.push_back(w.values.shape());
  }
  auto backward = [origins, shapes](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    std::vector<Tensor> r(needs.size());
    for (size_t i = 0; i < needs.size(); ++i)
      if (needs[i]) r[i] = window_of(g, origins[i], shapes[i]);
    return r;
  };
  return record("gradient_windows", whole, parts, backward);
}

// The gradient a node's output received: the dense part plus its windows, written into one
// buffer (windows that overlap are padded and added).
struct PendingGrad {
  Tensor dense;
  std::vector<Window> windows;
};
Tensor materialize(const PendingGrad& p, const Shape& shape) {
  if (p.windows.empty()) return p.dense;
  bool disjoint = true;
  int64_t covered = 0;
  for (size_t i = 0; i < p.windows.size(); ++i) {
    covered += p.windows[i].values.numel();
    for (size_t j = 0; j < i && disjoint; ++j) disjoint = !overlap(p.windows[i], p.windows[j]);
  }
  Tensor sum;
  if (disjoint) {
    sum = assemble(p.windows, shape, covered);
  } else {
    for (const Window& w : p.windows) {
      std::vector<std::pair<int64_t, int64_t>> pads;  // last dim first, as pad() takes them
      for (int d = shape.ndim - 1; d >= 0; --d)
        pads.push_back({w.origin[d], shape[d] - w.origin[d] - w.values.dim(d)});
      sum = accumulate(sum, pad(w.values, pads));
    }
  }
  return accumulate(p.dense, sum);
}

// The shared engine. Wanted leaves/nodes get their total gradient in `leaf_out`/`node_out`;
// accumulate_leaves: backward() mode, where every reachable leaf is wanted and gets .grad().
void run_backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                  bool retain_graph, bool create_graph, bool accumulate_leaves,
                  std::unordered_map<TensorImpl*, Tensor>& leaf_out,
                  std::unordered_map<Node*, Tensor>& node_out) {
  std::unordered_map<Node*, PendingGrad> grads;
  std::vector<Node*> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    const Tensor& g = grad_outputs[i];
    FPA_CHECK(g.shape() == o.shape(), "grad: grad_output ", i, " has shape ", g.shape(),
              " but output has shape ", o.shape());
    if (o.grad_fn()) {
      Node* n = o.grad_fn().get();
      grads[n].dense = accumulate(grads[n].dense, g);
      roots.push_back(n);
    } else if (leaf_out.count(o.impl())) {
      leaf_out[o.impl()] = accumulate(leaf_out[o.impl()], g);
    }
  }
  std::vector<Node*> order = reachable(roots);

  // needed: the node has an edge to a wanted leaf or node, or to a needed node.
  std::unordered_map<Node*, bool> needed;
  auto edge_wanted = [&](const Edge& e) {
    if (!e.requires_grad) return false;
    if (e.fn) return needed[e.fn.get()] || node_out.count(e.fn.get()) > 0;
    return accumulate_leaves || leaf_out.count(e.leaf.get()) > 0;
  };
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    bool any = false;
    for (const Edge& e : (*it)->inputs) any = any || edge_wanted(e);
    needed[*it] = any;
  }

  GradModeGuard mode(create_graph);
  for (Node* n : order) {
    auto git = grads.find(n);
    if (git == grads.end()) continue;
    Tensor g = materialize(git->second, n->out_shape);
    grads.erase(git);
    if (node_out.count(n)) node_out[n] = g;
    if (!needed[n]) continue;
    FPA_CHECK(n->backward != nullptr, "backward: the graph through ", n->name,
              " was already freed; pass retain_graph=true to backward through it twice");
    std::vector<bool> needs(n->inputs.size());
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = edge_wanted(n->inputs[i]);
    Tensor out;
    if (n->saved_output) {
      out = Tensor(n->saved_output);
      out = alias(out, out.shape());
      out.impl()->requires_grad = true;
      out.impl()->grad_fn = n->shared_from_this();
    }
    std::vector<Tensor> in_grads = n->backward(g, out, needs);
    FPA_CHECK(in_grads.size() == n->inputs.size(), n->name, " backward: returned ", in_grads.size(),
              " gradients for ", n->inputs.size(), " inputs");
    if (!retain_graph) n->release();
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Edge& e = n->inputs[i];
      Shape full;
      Window window;
      const bool windowed = take_window(in_grads[i], full, window);
      if (!needs[i] || !in_grads[i].defined()) continue;
      FPA_CHECK((windowed ? full : in_grads[i].shape()) == e.shape, n->name, " backward: gradient for input ", i,
                " has shape ", windowed ? full : in_grads[i].shape(), ", expected ", e.shape);
      if (windowed && e.fn) {
        grads[e.fn.get()].windows.push_back(std::move(window));
        continue;
      }
      if (windowed) {  // a leaf's: made whole at once
        PendingGrad whole{Tensor(), {std::move(window)}};
        in_grads[i] = materialize(whole, full);
      }
      if (e.fn) {
        Tensor& slot = grads[e.fn.get()].dense;
        slot = accumulate(slot, in_grads[i]);
      } else if (accumulate_leaves) {
        Tensor prev(e.leaf->grad);
        Tensor sum = accumulate(prev, in_grads[i]);
        e.leaf->grad = (sum.defined() && !create_graph ? sum.detach() : sum).impl_ptr();
      } else {
        Tensor& slot = leaf_out[e.leaf.get()];
        slot = accumulate(slot, in_grads[i]);
      }
    }
  }
}

Tensor ones_like_checked(const Tensor& t, const char* op) {
  FPA_CHECK(t.numel() == 1, op, ": grad_output may be omitted only for a single-element output, got ",
            t.str());
  return ones(t.shape(), t.dtype(), t.device());
}

}  // namespace

Tensor gradient_window(const Tensor& window, const Shape& full, const std::vector<int64_t>& origin) {
  FPA_CHECK(window.ndim() == full.ndim && int(origin.size()) == full.ndim, "gradient_window: window ",
            window.shape(), " does not fit ", full);
  for (int d = 0; d < full.ndim; ++d)
    FPA_CHECK(origin[d] >= 0 && origin[d] + window.dim(d) <= full[d], "gradient_window: window ", window.shape(),
              " at that origin leaves ", full);
  Tensor handle = alias(window, window.shape());  // an impl of its own: the key
  t_windows[handle.impl()] = WindowReturn{handle, full, Window{window, origin}};
  return handle;
}

void backward(const Tensor& loss, const Tensor& grad_out, bool retain_graph, bool create_graph) {
  check_defined("backward", loss, "loss");
  FPA_CHECK(loss.requires_grad(), "backward: ", loss.str(),
            " does not require grad (no input required grad, or it was computed under no-grad)");
  Tensor g = grad_out.defined() ? grad_out : ones_like_checked(loss, "backward");
  std::unordered_map<TensorImpl*, Tensor> leaf_out;
  std::unordered_map<Node*, Tensor> node_out;
  if (!loss.grad_fn()) {  // the loss is itself a leaf
    Tensor prev(loss.impl()->grad);
    loss.impl()->grad = accumulate(prev, g).impl_ptr();
    return;
  }
  run_backward({loss}, {g}, retain_graph, create_graph, true, leaf_out, node_out);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  FPA_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "grad: ", outputs.size(),
            " outputs but ", grad_outputs.size(), " grad_outputs");
  std::vector<Tensor> gos;
  for (size_t i = 0; i < outputs.size(); ++i) {
    check_defined("grad", outputs[i], "an output");
    FPA_CHECK(outputs[i].requires_grad(), "grad: output ", i, " (", outputs[i].str(),
              ") does not require grad");
    gos.push_back(grad_outputs.empty() || !grad_outputs[i].defined()
                      ? ones_like_checked(outputs[i], "grad")
                      : grad_outputs[i]);
  }
  std::unordered_map<TensorImpl*, Tensor> leaf_out;
  std::unordered_map<Node*, Tensor> node_out;
  for (const Tensor& x : inputs) {
    check_defined("grad", x, "an input");
    FPA_CHECK(x.requires_grad(), "grad: input ", x.str(), " does not require grad");
    if (x.grad_fn()) node_out[x.grad_fn().get()] = Tensor();
    else leaf_out[x.impl()] = Tensor();
  }
  run_backward(outputs, gos, retain_graph, create_graph, false, leaf_out, node_out);
  std::vector<Tensor> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    Tensor g = x.grad_fn() ? node_out[x.grad_fn().get()] : leaf_out[x.impl()];
    FPA_CHECK(g.defined() || allow_unused, "grad: input ", i, " (", x.str(),
              ") is not reachable from the outputs; pass allow_unused=true");
    result.push_back(g);
  }
  return result;
}

}  // namespace fpa
