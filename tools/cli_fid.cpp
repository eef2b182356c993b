// cli_fid.cpp: `fpa fid`, FID and KID in the engine (train/image_quality.h): generated images
// of a checkpoint against a dataset (the dataset's features cached), or two image sets.
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "autograd/error.h"
#include "autograd/philox.h"
#include "data/dataset_cache.h"
#include "fpa/config.h"
#include "nn/safetensors.h"
#include "tools/cli_verbs.h"
#include "train/image_quality.h"

namespace fpa::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Progress on stderr for `what`: one line rewritten in place on a terminal, else a line per
// tenth of the images.
FeatureProgress progress_line(const std::string& what) {
  auto start = std::chrono::steady_clock::now();
  const bool terminal = isatty(fileno(stderr));
  return [what, start, terminal, shown = int64_t(0)](int64_t done, int64_t total) mutable {
    const int64_t tenth = done * 10 / std::max<int64_t>(total, 1);
    if (!terminal && tenth == shown && done < total) return;
    shown = tenth;
    fmt::print(stderr, "{}fpa fid: {} {}/{} images ({:.1f} images/s){}", terminal ? "\r" : "", what, done, total,
               double(done) / seconds_since(start), terminal && done < total ? "" : "\n");
  };
}

// An image set named on the command line: a safetensors file with tensor 'images' (N, C, H, W)
// in [0, 1], or a dataset source (fashion-mnist, fashion-mnist-test, a folder) at `size`. Both
// sets are opened and checked before the network loads or any feature is computed.
struct ImageSet {
  std::string source;
  ImageDataset dataset;  // a dataset source
  Tensor images;         // or a file's (N, C, H, W) images
};

ImageSet open_image_set(const std::string& source, int64_t size, const std::string& role) {
  ImageSet set{source, {}, {}};
  const bool file = source.size() > 12 && source.substr(source.size() - 12) == ".safetensors";
  if (!file) {
    set.dataset = load_dataset(source, int(size), false);
    return set;
  }
  nn::NamedTensors t = nn::load_safetensors(source);
  const Tensor* images = t.find("images");
  FPA_CHECK(images && images->ndim() == 4 && (images->dim(1) == 1 || images->dim(1) == 3), "fpa fid: --", role,
            " ", source, ": needs a tensor 'images' (N, 1 or 3, H, W) in [0, 1]");
  set.images = *images;
  return set;
}

FeatureSet image_set_features(const FidInception& net, const ImageSet& set, int64_t n, const std::string& role,
                              bool* cached) {
  *cached = false;
  if (!set.images.defined())
    return cached_dataset_features(net, set.dataset, n, "", cached, progress_line(role + " " + set.source));
  const int64_t count = n > 0 ? std::min(n, set.images.dim(0)) : set.images.dim(0);
  FeatureCollector collector(net);
  FeatureProgress progress = progress_line(role + " " + set.source);
  for (int64_t b = 0; b < count; b += kFeatureBatch) {
    const int64_t end = std::min(count, b + kFeatureBatch);
    collector.add(as_8bit_image(slice(set.images, 0, b, end)));
    progress(end, count);
  }
  return collector.finish();
}

void print_scores(const QualityScores& s, bool real_cached, double seconds) {
  const std::string subsets = s.kid.subsets == 1 ? fmt::format("all {} images, one subset", s.kid.subset_size)
                                                 : fmt::format("{} subsets of {}", s.kid.subsets, s.kid.subset_size);
  fmt::print("FID {:.3f}  KID {:.5f} +- {:.5f} ({})  real {} images{}, fake {} images, {:.1f} s\n", s.fid, s.kid.mean,
             s.kid.std, subsets, s.real_count, real_cached ? " (cached features)" : "", s.fake_count, seconds);
}

}  // namespace

int fid(const Args& a) {
  const auto start = std::chrono::steady_clock::now();
  const std::string weights = a.str("weights", default_inception_weights_path());
  const uint64_t seed = uint64_t(a.integer("seed", 0));
  bool real_cached = false, fake_cached = false;
  FeatureSet real, fake;
  if (a.has("ckpt")) {
    FPA_CHECK(!a.has("real") && !a.has("fake"), "fpa fid: give --ckpt with --data, or --real with --fake");
    nn::NamedTensors ckpt = nn::load_safetensors(a.required("ckpt"));
    const GeneratorModel g = load_generator(a, ckpt, a.flag("ema"));
    const GeneratorConfig config = from_metadata(ckpt.metadata).g;
    const int64_t n = a.integer("n", 10000), real_n = a.integer("real-n", kDefaultRealImages);
    const std::string data = a.str("data", "fashion-mnist");
    a.finish();
    FPA_CHECK(n >= 2, "fpa fid: --n must be at least 2, got ", n);
    const FidInception net = FidInception::load(weights);
    ImageDataset images = load_dataset(data, int(config.image_size), config.channels == 1);
    real = cached_dataset_features(net, images, real_n, "", &real_cached, progress_line("real " + data));
    Philox gen(seed * 7919 + 29);
    fake = generated_features(net, g, config.latent_dim, n, gen, Device::cpu, progress_line("generated"));
  } else {
    const std::string real_source = a.required("real"), fake_source = a.required("fake");
    const int64_t size = a.integer("size", 32), n = a.integer("n", 0);
    a.finish();
    FPA_CHECK(size >= 1, "fpa fid: --size must be positive, got ", size);
    const ImageSet real_set = open_image_set(real_source, size, "real");
    const ImageSet fake_set = open_image_set(fake_source, size, "fake");
    const FidInception net = FidInception::load(weights);
    real = image_set_features(net, real_set, n, "real", &real_cached);
    fake = image_set_features(net, fake_set, n, "fake", &fake_cached);
  }
  print_scores(compare_feature_sets(real, fake, seed), real_cached, seconds_since(start));
  return 0;
}

}  // namespace fpa::cli
