// fpa_cli.cpp: the `fpa` command line. Verbs so far: --version (backends compiled in) and
// `ops` (the registered ops, one per line).
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "autograd/error.h"
#include "ops/backend.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/registry.h"

namespace fpa {
#ifdef FPA_WITH_CUDA
int cuda_device_count();
#endif
}  // namespace fpa

static void print_usage() {
  std::printf(
      "usage: fpa <command>\n"
      "  --version   print the version and the compute backends compiled in\n"
      "  ops         list the registered ops, one per line\n"
      "  --help      this text\n");
}

static void print_version() {
  std::printf("fpa 0.1.0 (Fast Weight Painters engine)\n");
  std::printf("backends: cpu");
#ifdef FPA_WITH_CUDA
  std::printf(" cuda");
#endif
  std::printf("\ncpu: OpenMP, %d threads; GEMM: %s\n", omp_get_max_threads(), fpa::cpu::gemm_implementation());
#ifdef FPA_WITH_CUDA
  int n = fpa::cuda_device_count();
  std::printf("cuda: compiled in; %d usable device(s)%s\n", n, n ? "" : " (no GPU on this machine)");
#else
  std::printf("cuda: not compiled in (no nvcc at build time)\n");
#endif
}

int main(int argc, char** argv) {
  try {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
      print_usage();
      return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    if (cmd == "--version") {
      print_version();
    } else if (cmd == "ops") {
      for (const fpa::OpInfo& op : fpa::registered_ops()) std::printf("%s\n", op.name.c_str());
    } else {
      std::fprintf(stderr, "fpa: unknown command '%s'\n", cmd.c_str());
      print_usage();
      return 2;
    }
  } catch (const fpa::Error& e) {
    std::fprintf(stderr, "fpa: %s\n", e.what());
    return 1;
  }
  return 0;
}
