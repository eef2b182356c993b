// fashion_mnist.cpp: the IDX reader (gzip through zlib) and the 28 -> 32 zero padding.
//
// IDX: a big-endian header (magic 0x00000803 for uint8 3-d images, 0x00000801 for uint8 1-d
// labels; then one uint32 per dimension) followed by the raw bytes, row-major.
#include "data/fashion_mnist.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "autograd/error.h"

namespace fpa {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;

// A whole gzip file, decompressed. Errors name the path (and the package when missing).
std::vector<uint8_t> read_gzip_file(const std::string& path) {
  std::FILE* probe = std::fopen(path.c_str(), "rb");
  FPA_CHECK(probe, "fashion-mnist: cannot open ", path, " (", std::strerror(errno),
            "); it comes from the Debian package dataset-fashion-mnist: install it with: "
            "apt-get install dataset-fashion-mnist (or run `make deps`)");
  std::fclose(probe);
  gzFile gz = gzopen(path.c_str(), "rb");
  FPA_CHECK(gz, "fashion-mnist: cannot open ", path);
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> buf(1 << 20);
  int n;
  while ((n = gzread(gz, buf.data(), unsigned(buf.size()))) > 0)
    bytes.insert(bytes.end(), buf.begin(), buf.begin() + n);
  int err = Z_OK;
  std::string message = n < 0 ? gzerror(gz, &err) : "";
  gzclose(gz);
  FPA_CHECK(n == 0, "fashion-mnist: ", path, ": corrupt gzip data: ", message);
  return bytes;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
}

// Checks an IDX header: magic, dims; returns the offset of the data.
size_t check_idx(const std::vector<uint8_t>& b, const std::string& path, uint32_t magic,
                 const std::vector<uint32_t>& dims) {
  const size_t header = 4 + 4 * dims.size();
  FPA_CHECK(b.size() >= header, "fashion-mnist: ", path, ": ", b.size(),
            " bytes, too short for an IDX header");
  FPA_CHECK(be32(b, 0) == magic, "fashion-mnist: ", path, ": IDX magic 0x", std::hex, be32(b, 0),
            ", expected 0x", magic, std::dec);
  size_t expect = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    FPA_CHECK(be32(b, 4 + 4 * i) == dims[i], "fashion-mnist: ", path, ": dimension ", i, " is ",
              be32(b, 4 + 4 * i), ", expected ", dims[i]);
    expect *= dims[i];
  }
  FPA_CHECK(b.size() == header + expect, "fashion-mnist: ", path, ": ", b.size() - header,
            " data bytes, expected ", expect);
  return header;
}

}  // namespace

std::string fashion_mnist_dir() {
  const char* env = std::getenv("FPA_FASHION_MNIST_DIR");
  return env && *env ? env : kFashionMnistDir;
}

const char* fashion_mnist_class_name(int label) {
  static const char* names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  FPA_CHECK(label >= 0 && label < 10, "fashion-mnist: label ", label, " out of range 0..9");
  return names[label];
}

ImageDataset load_fashion_mnist(bool train, const std::string& dir_in) {
  const std::string dir = dir_in.empty() ? fashion_mnist_dir() : dir_in;
  const std::string prefix = dir + (train ? "/train" : "/t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = prefix + "-labels-idx1-ubyte.gz";
  const uint32_t n = train ? kFashionMnistTrain : kFashionMnistTest, side = kFashionMnistSide;

  std::vector<uint8_t> images = read_gzip_file(images_path);
  const size_t image_data = check_idx(images, images_path, kImagesMagic, {n, side, side});
  std::vector<uint8_t> labels = read_gzip_file(labels_path);
  const size_t label_data = check_idx(labels, labels_path, kLabelsMagic, {n});

  ImageDataset d;
  d.count = n, d.channels = 1, d.size = kFashionMnistPadded;
  d.source = prefix + "-*-idx*-ubyte.gz";
  d.pixels.assign(size_t(n) * d.image_bytes(), 0);  // (N, 1, 32, 32), the border stays 0
  const int pad = (kFashionMnistPadded - kFashionMnistSide) / 2;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* src = &images[image_data + i * side * side];  // (28, 28)
    uint8_t* dst = &d.pixels[i * d.image_bytes()];               // (32, 32)
    for (uint32_t y = 0; y < side; ++y)
      std::memcpy(dst + (y + pad) * kFashionMnistPadded + pad, src + y * side, side);
  }
  d.labels.assign(labels.begin() + label_data, labels.end());
  for (size_t i = 0; i < n; ++i)
    FPA_CHECK(d.labels[i] < 10, "fashion-mnist: ", labels_path, ": label ", int(d.labels[i]),
              " at index ", i, " is out of range 0..9");
  return d;
}

}  // namespace fpa
