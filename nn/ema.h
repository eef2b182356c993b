// ema.h: the exponential moving average of a generator's parameters (FPA_REFERENCE.md
// section 6, the official `EMA` / `reset_parameter_averaging`): for matching parameter lists
// of two modules (same names and shapes, in order), update() sets
//   ema = beta * ema + (1 - beta) * current
// (the official `old * beta + (1 - beta) * new`), and reset() copies current into ema. Both
// write into the existing storage of the EMA module's parameters (no history recorded), so
// views of them (an optimiser's flat buffer, a state dict) stay valid. The EMA module's
// parameters are set not to require grad.
#pragma once
#include <utility>
#include <vector>

#include "nn/module.h"

namespace fpa::nn {

class EMA {
 public:
  EMA(Module& ema, Module& current, double beta = 0.995);

  void update();  // ema = beta * ema + (1 - beta) * current
  void reset();   // ema = current
  double beta() const { return beta_; }

 private:
  std::vector<std::pair<Tensor*, Tensor*>> pairs_;  // (ema, current)
  double beta_;
};

}  // namespace fpa::nn
