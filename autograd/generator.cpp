// generator.cpp: the process-wide default generator.
#include "autograd/generator.h"

namespace fpa {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace fpa
