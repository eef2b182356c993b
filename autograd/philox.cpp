// philox.cpp: the process-wide default generator.
#include "autograd/philox.h"

namespace fpa {

Philox& default_generator() {
  static Philox g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace fpa
