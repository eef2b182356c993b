// engine.cpp: recording nodes and running them backwards (backward() and grad()).
//
// The walk: collect the nodes reachable from the outputs (explicit stack, no recursion),
// mark which ones lead to a wanted input, then run them in decreasing creation order, so a
// node runs only after every consumer of its output has delivered its gradient.
#include "autograd/engine.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "autograd/error.h"
#include "ops/ops.h"

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

struct Walk {
  std::vector<Node*> order;                         // decreasing seq
  std::unordered_map<Node*, bool> needed;           // leads to a wanted input
};

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

// The shared engine. Wanted leaves/nodes get their total gradient in `leaf_out`/`node_out`;
// accumulate_leaves: backward() mode, where every reachable leaf is wanted and gets .grad().
void run_backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                  bool retain_graph, bool create_graph, bool accumulate_leaves,
                  std::unordered_map<TensorImpl*, Tensor>& leaf_out,
                  std::unordered_map<Node*, Tensor>& node_out) {
  std::unordered_map<Node*, Tensor> grads;
  std::vector<Node*> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    const Tensor& g = grad_outputs[i];
    FPA_CHECK(g.shape() == o.shape(), "grad: grad_output ", i, " has shape ", g.shape(),
              " but output has shape ", o.shape());
    if (o.grad_fn()) {
      Node* n = o.grad_fn().get();
      grads[n] = accumulate(grads[n], g);
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
    Tensor g = git->second;
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
      if (!needs[i] || !in_grads[i].defined()) continue;
      FPA_CHECK(in_grads[i].shape() == e.shape, n->name, " backward: gradient for input ", i,
                " has shape ", in_grads[i].shape(), ", expected ", e.shape);
      if (e.fn) {
        Tensor& slot = grads[e.fn.get()];
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
