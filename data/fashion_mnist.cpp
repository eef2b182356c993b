// fashion_mnist.cpp: the IDX reader (gzip through zlib, from bytes in memory) and the 28 -> 32
// zero padding.
//
// IDX: a big-endian header (magic 0x00000803 for uint8 3-d images, 0x00000801 for uint8 1-d
// labels; then one uint32 per dimension) followed by the raw bytes, row-major.
#include "data/fashion_mnist.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "autograd/error.h"

namespace fpa {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;

// A gzip stream held in memory, inflated a piece at a time, so that what a header claims is
// checked against the data it holds before anything of that size is allocated.
class Gunzip {
 public:
  Gunzip(const std::vector<uint8_t>& gz, const std::string& name) : name_(name) {
    FPA_CHECK(gz.size() <= UINT32_MAX, "fashion-mnist: ", name, ": ", gz.size(),
              " bytes is too large");
    FPA_CHECK(inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK, "fashion-mnist: ", name,
              ": zlib: out of memory");
    z_.next_in = const_cast<Bytef*>(gz.data());
    z_.avail_in = uInt(gz.size());
  }
  ~Gunzip() { inflateEnd(&z_); }
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;

  // Fills dst with up to n bytes; fewer only where the stream ends.
  size_t read(uint8_t* dst, size_t n) {
    z_.next_out = dst;
    z_.avail_out = uInt(n);
    while (z_.avail_out > 0 && !ended_) {
      const int r = inflate(&z_, Z_NO_FLUSH);
      ended_ = r == Z_STREAM_END;
      const char* why = r == Z_BUF_ERROR ? "unexpected end of the file" : z_.msg ? z_.msg : "zlib";
      FPA_CHECK(ended_ || r == Z_OK, "fashion-mnist: ", name_, ": corrupt gzip data: ", why);
    }
    FPA_CHECK(!ended_ || z_.avail_in == 0, "fashion-mnist: ", name_, ": ", z_.avail_in,
              " bytes after the end of the gzip data");
    return n - z_.avail_out;
  }

 private:
  z_stream z_{};
  std::string name_;
  bool ended_ = false;
};

uint32_t be32(const uint8_t* b) {
  return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
}

// The data of a gzip IDX file after checking its magic and its dimensions against `dims`;
// a 0 in dims accepts any non-zero size there and is set to it. The data must be exactly what the
// dimensions call for: it is inflated only as far as that, in pieces.
std::vector<uint8_t> read_idx(const std::vector<uint8_t>& file, const std::string& name,
                              uint32_t magic, std::vector<uint32_t>& dims) {
  Gunzip gz(file, name);
  std::vector<uint8_t> header(4 + 4 * dims.size());
  const size_t got = gz.read(header.data(), header.size());
  FPA_CHECK(got == header.size(), "fashion-mnist: ", name, ": ", got,
            " bytes, too short for an IDX header");
  FPA_CHECK(be32(&header[0]) == magic, "fashion-mnist: ", name, ": IDX magic ",
            fmt::format("{:#x}", be32(&header[0])), ", expected ", fmt::format("{:#x}", magic));
  uint64_t expect = 1;  // at most 2^32 * 28 * 28
  for (size_t i = 0; i < dims.size(); ++i) {
    const uint32_t d = be32(&header[4 + 4 * i]);
    FPA_CHECK(dims[i] ? d == dims[i] : d > 0, "fashion-mnist: ", name, ": dimension ", i, " is ", d,
              ", expected ", dims[i] ? std::to_string(dims[i]) : "a count > 0");
    dims[i] = d;
    expect *= d;
  }
  std::vector<uint8_t> data;
  while (data.size() < expect) {
    const size_t at = data.size(), piece = size_t(std::min<uint64_t>(expect - at, 1 << 20));
    data.resize(at + piece);
    const size_t n = gz.read(data.data() + at, piece);
    FPA_CHECK(n == piece, "fashion-mnist: ", name, ": ", at + n, " data bytes, expected ", expect);
  }
  uint8_t extra;
  FPA_CHECK(gz.read(&extra, 1) == 0, "fashion-mnist: ", name, ": more than the ", expect,
            " data bytes its dimensions call for");
  return data;
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

ImageDataset decode_fashion_mnist(const std::vector<uint8_t>& images_gz,
                                  const std::vector<uint8_t>& labels_gz,
                                  const std::string& images_name, const std::string& labels_name) {
  const uint32_t side = kFashionMnistSide;
  std::vector<uint32_t> image_dims = {0, side, side};
  const std::vector<uint8_t> images = read_idx(images_gz, images_name, kImagesMagic, image_dims);
  const uint32_t n = image_dims[0];
  std::vector<uint32_t> label_dims = {n};
  std::vector<uint8_t> labels = read_idx(labels_gz, labels_name, kLabelsMagic, label_dims);

  ImageDataset d;
  d.count = n, d.channels = 1, d.size = kFashionMnistPadded;
  d.pixels.assign(size_t(n) * d.image_bytes(), 0);  // (N, 1, 32, 32), the border stays 0
  const int pad = (kFashionMnistPadded - kFashionMnistSide) / 2;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* src = &images[i * side * side];  // (28, 28)
    uint8_t* dst = &d.pixels[i * d.image_bytes()];  // (32, 32)
    for (uint32_t y = 0; y < side; ++y)
      std::memcpy(dst + (y + pad) * kFashionMnistPadded + pad, src + y * side, side);
  }
  for (size_t i = 0; i < n; ++i)
    FPA_CHECK(labels[i] < 10, "fashion-mnist: ", labels_name, ": label ", int(labels[i]),
              " at index ", i, " is out of range 0..9");
  d.labels = std::move(labels);
  return d;
}

ImageDataset load_fashion_mnist(bool train, const std::string& dir_in) {
  const std::string dir = dir_in.empty() ? fashion_mnist_dir() : dir_in;
  const std::string prefix = dir + (train ? "/train" : "/t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = prefix + "-labels-idx1-ubyte.gz";
  auto read = [](const std::string& path) {
    FPA_CHECK(access(path.c_str(), R_OK) == 0, "fashion-mnist: cannot open ", path, " (",
              std::strerror(errno),
              "); it comes from the Debian package dataset-fashion-mnist: install it with: "
              "apt-get install dataset-fashion-mnist (or run `make deps`)");
    return read_file_bytes(path);
  };
  const std::vector<uint8_t> images = read(images_path), labels = read(labels_path);
  ImageDataset d = decode_fashion_mnist(images, labels, images_path, labels_path);
  const int64_t n = train ? kFashionMnistTrain : kFashionMnistTest;
  FPA_CHECK(d.count == n, "fashion-mnist: ", images_path, ": ", d.count, " images, expected ", n);
  d.source = prefix + "-*-idx*-ubyte.gz";
  return d;
}

}  // namespace fpa
