// stub_backend.cpp: a backend whose every entry throws "unimplemented: NAME (stub backend)",
// generated from the primitive list (ops/backend/primitives.def).
//
// It is the porting template (ops/backend/PORTING.md): a new backend starts from it and replaces
// entries one at a time, answering true from `supports` for those done. It is also what the
// tests use to check that an unimplemented primitive fails cleanly instead of crashing.
#include "autograd/error.h"
#include "ops/backend/backend.h"

namespace fpa {

const Backend& stub_backend() {
  static const Backend b = [] {
    Backend t{};
    t.name = "stub";
    t.supports = [](const char*) { return false; };
#define FPA_PRIMITIVE(fn, ret, params) \
  t.fn = [] params -> ret { fail("unimplemented: " #fn " (stub backend)"); };
#include "ops/backend/primitives.def"
    return t;
  }();
  return b;
}

}  // namespace fpa
