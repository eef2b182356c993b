// fashion_mnist.h: Fashion-MNIST (Xiao et al. 2017), the embedded default dataset, read
// from the gzip IDX files of Debian's `dataset-fashion-mnist` package through zlib.
//
// The 28x28 greyscale images are padded with 2 black pixels on each side to 32x32 (the
// grey32 preset's size), labels 0..9. IDX magic numbers, dimensions, counts and lengths are
// all checked (the data is inflated only as far as the header's dimensions call for); a missing
// file is an error naming it and the package that provides it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_io.h"

namespace fpa {

// Where the Debian package puts the files; $FPA_FASHION_MNIST_DIR overrides it.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
std::string fashion_mnist_dir();

constexpr int kFashionMnistSide = 28;    // as stored
constexpr int kFashionMnistPadded = 32;  // as loaded: 2 zero pixels each side
constexpr int kFashionMnistTrain = 60000, kFashionMnistTest = 10000;

// The 10 class names, by label.
const char* fashion_mnist_class_name(int label);

// The train (60,000) or test (10,000) split: (N, 1, 32, 32) uint8 with labels.
// `dir` empty means fashion_mnist_dir().
ImageDataset load_fashion_mnist(bool train = true, const std::string& dir = "");

// The same from the two gzip IDX files' bytes, held in memory: images (N, 28, 28) and labels
// (N), any N > 0 (taken from the images' header). The names stand for the paths in messages.
ImageDataset decode_fashion_mnist(const std::vector<uint8_t>& images_gz,
                                  const std::vector<uint8_t>& labels_gz,
                                  const std::string& images_name, const std::string& labels_name);

}  // namespace fpa
