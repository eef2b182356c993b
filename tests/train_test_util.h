// train_test_util.h: what the trainer tests share: run folders under /tmp, real Fashion-MNIST
// at 32x32, a cpu-small-like configuration that trains a step in milliseconds, and the
// parameters of a trainer's models on the host.
#pragma once
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset_cache.h"
#include "train/trainer.h"

namespace fpa::test {

// A fresh empty folder for this process and `name`.
inline std::string temp_dir(const std::string& name) {
  std::string d = "/tmp/fpa_test_train_" + std::to_string(getpid()) + "_" + name;
  std::system(("rm -rf " + d + " && mkdir -p " + d).c_str());
  return d;
}

inline bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && st.st_size > 0;
}

inline std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline std::shared_ptr<const ImageDataset> fashion() {
  static auto data = std::make_shared<const ImageDataset>(load_dataset("fashion-mnist", 32, true));
  return data;
}

// cpu-small's family at a size that trains a step in milliseconds.
inline TrainOptions tiny(const std::string& out, int64_t steps) {
  TrainOptions o = train_defaults("cpu-small");
  o.model.g.hidden = 16, o.model.g.latent_dim = 16, o.model.g.steps = 8, o.model.g.mini_input = 8;
  o.model.d.fmap_max = 16, o.model.d.attn_heads = 1, o.model.d.attn_dim_head = 8;
  o.batch = 4, o.steps = steps, o.out = out;
  o.sample_every = 10, o.checkpoint_every = 10, o.log_every = 10;
  o.ema_start = 5, o.aug_prob = 0.5;
  return o;
}

// Runs the built `fpa` binary (FPA_BIN, set by make test) with `args`; its exit code and its
// stdout and stderr together.
inline std::pair<int, std::string> fpa_cli(const std::string& args) {
  const char* bin = std::getenv("FPA_BIN");
  std::string out = "/tmp/fpa_test_cli_" + std::to_string(getpid()) + ".txt";
  int rc = std::system((std::string(bin) + " " + args + " > " + out + " 2>&1").c_str());
  return {WEXITSTATUS(rc), slurp(out)};
}

// Every parameter of G, D and GE, in order, as host floats.
inline std::vector<std::vector<float>> all_parameters(Trainer& t) {
  std::vector<std::vector<float>> r;
  const std::vector<nn::Module*> modules = {t.generator().module.get(), &t.discriminator(),
                                            t.ema_generator().module.get()};
  for (nn::Module* m : modules)
    for (Tensor* p : m->parameters()) r.push_back(p->to_floats());
  return r;
}

}  // namespace fpa::test
