// test_data.cpp: the data side. Fashion-MNIST from Debian's package (count, padding, labels,
// the known mean), the gemojione emoji folder (1,794 64x64 PNGs in mixed modes) at 64, 32 and
// greyscale, every PNG colour type from hand-built files, JPEG, resizing, corrupt and empty
// folders, the loader's shuffle and exact resume, the dataset cache, and image grids. The big
// decodes happen once (statics). The GIF writer: test_gif.cpp.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "data/dataset_cache.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/image_grid.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using Ints = std::vector<int>;

struct TempDir {
  std::string path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "fpa_test_data_XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const ImageDataset& fashion_train() {
  static const ImageDataset d = load_fashion_mnist(true);
  return d;
}

std::string emoji_dir() {
  const fs::path gems = "/usr/share/rubygems-integration/all/gems";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(gems, ec))
    if (e.path().filename().string().rfind("gemojione-", 0) == 0 &&
        fs::is_directory(e.path() / "assets/png"))
      return (e.path() / "assets/png").string();
  return "";
}

const ImageDataset& emoji64() {
  static const ImageDataset d = [] {
    EXPECT_NE(emoji_dir(), "") << "ruby-gemojione is not installed: run `make deps`";
    return load_image_folder(emoji_dir(), 64, false);
  }();
  return d;
}

// ---- Fashion-MNIST ----

TEST(FashionMnistData, TrainSplitPaddedWithLabelsAndKnownMean) {
  const ImageDataset& d = fashion_train();
  ASSERT_EQ(d.count, 60000);
  ASSERT_EQ(d.channels, 1);
  ASSERT_EQ(d.size, 32);
  ASSERT_EQ(d.labels.size(), 60000u);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : d.labels) per_class.at(l)++;
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 6000) << fashion_mnist_class_name(c);
  EXPECT_EQ(d.labels[0], 9);  // the first training image is an ankle boot
  uint64_t border = 0, sum = 0;
  for (int64_t i = 0; i < d.count; ++i) {
    const uint8_t* img = d.image(i);  // (32, 32)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        sum += img[y * 32 + x];
        if (y < 2 || y >= 30 || x < 2 || x >= 30) border += img[y * 32 + x];
      }
  }
  EXPECT_EQ(border, 0u) << "the 2-pixel padding must be zeros";
  const double mean = double(sum) / (60000.0 * 1024 * 255);
  EXPECT_NEAR(mean, 0.2860 * 28 * 28 / (32 * 32), 2e-4);  // the dataset's well-known mean
}

TEST(FashionMnistData, TestSplitAndLoadDataset) {
  ImageDataset d = load_dataset("fashion-mnist-test", 16, false);  // resized, grey to RGB
  ASSERT_EQ(d.count, 10000);
  ASSERT_EQ(d.channels, 3);
  ASSERT_EQ(d.size, 16);
  for (int64_t k = 0; k < 256; ++k) EXPECT_EQ(d.image(7)[k], d.image(7)[2 * 256 + k]);
}

TEST(FashionMnistData, MissingOrCorruptFilesAreNamedErrors) {
  EXPECT_ERROR(load_fashion_mnist(true, "/no/such/dir"), "/no/such/dir/train-images-idx3-ubyte.gz");
  EXPECT_ERROR(load_fashion_mnist(true, "/no/such/dir"), "apt-get install dataset-fashion-mnist");
  TempDir tmp;
  gzFile gz = gzopen((tmp / "t10k-images-idx3-ubyte.gz").c_str(), "wb");
  const uint8_t header[16] = {0, 0, 8, 1,  0, 0, 0x27, 0x10,
                              0, 0, 0, 28, 0, 0, 0,    28};  // labels magic
  gzwrite(gz, header, sizeof header);
  gzclose(gz);
  // Both files are read before either is decoded.
  write_bytes(tmp / "t10k-labels-idx1-ubyte.gz", {});
  EXPECT_ERROR(load_fashion_mnist(false, tmp.path), "IDX magic 0x801, expected 0x803");
}

Bytes gzip_bytes(const Bytes& raw) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);  // gzip wrapper
  Bytes out(deflateBound(&z, uLong(raw.size())) + 32);
  z.next_in = const_cast<Bytef*>(raw.data()), z.avail_in = uInt(raw.size());
  z.next_out = out.data(), z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// An IDX file: the magic, the dimensions, then `data`.
Bytes idx_file(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes b;
  auto put = [&](uint32_t v) {
    b.insert(b.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

TEST(FashionMnistData, DecodesBytesAndRefusesCountsTheDataCannotHold) {
  Bytes pixels(3 * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t(i * 7);
  const Bytes images = gzip_bytes(idx_file(0x803, {3, 28, 28}, pixels));
  const Bytes labels = gzip_bytes(idx_file(0x801, {3}, {9, 0, 4}));
  ImageDataset d = decode_fashion_mnist(images, labels, "im.gz", "lb.gz");
  ASSERT_EQ(d.count, 3);
  EXPECT_EQ(d.labels, (Bytes{9, 0, 4}));
  EXPECT_EQ(d.image(2)[2 * 32 + 2], pixels[2 * 784]);  // padded by 2 on each side
  EXPECT_EQ(d.image(2)[0], 0);

  // A header that claims 10^9 images over 3 images' data: refused where the data ends, nothing
  // allocated for what it claims; then too much data, no images, bad dimensions and labels.
  EXPECT_ERROR(decode_fashion_mnist(gzip_bytes(idx_file(0x803, {1000000000, 28, 28}, pixels)),
                                    labels, "im.gz", "lb.gz"),
               "fashion-mnist: im.gz: 2352 data bytes, expected 784000000000");
  EXPECT_ERROR(decode_fashion_mnist(gzip_bytes(idx_file(0x803, {2, 28, 28}, pixels)), labels,
                                    "im.gz", "lb.gz"),
               "im.gz: more than the 1568 data bytes its dimensions call for");
  EXPECT_ERROR(
      decode_fashion_mnist(gzip_bytes(idx_file(0x803, {0, 28, 28}, {})), labels, "im.gz", "lb.gz"),
      "im.gz: dimension 0 is 0, expected a count > 0");
  EXPECT_ERROR(decode_fashion_mnist(gzip_bytes(idx_file(0x803, {3, 28, 27}, pixels)), labels,
                                    "im.gz", "lb.gz"),
               "im.gz: dimension 2 is 27, expected 28");
  EXPECT_ERROR(
      decode_fashion_mnist(images, gzip_bytes(idx_file(0x801, {2}, {1, 2})), "im.gz", "lb.gz"),
      "lb.gz: dimension 0 is 2, expected 3");
  EXPECT_ERROR(
      decode_fashion_mnist(images, gzip_bytes(idx_file(0x801, {3}, {1, 10, 2})), "im.gz", "lb.gz"),
      "lb.gz: label 10 at index 1 is out of range 0..9");
  Bytes cut(images.begin(), images.end() - 20), trailing = images;
  trailing.push_back(0);
  EXPECT_ERROR(decode_fashion_mnist(cut, labels, "im.gz", "lb.gz"),
               "im.gz: corrupt gzip data: unexpected end of the file");
  EXPECT_ERROR(decode_fashion_mnist(trailing, labels, "im.gz", "lb.gz"),
               "im.gz: 1 bytes after the end of the gzip data");
  EXPECT_ERROR(decode_fashion_mnist(Bytes{1, 2, 3}, labels, "im.gz", "lb.gz"),
               "im.gz: corrupt gzip data");
}

// ---- PNG: every colour type, from hand-built files ----

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string chunk(const char* type, const std::string& data) {
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(type), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), uInt(data.size()));
  return be32(uint32_t(data.size())) + type + data + be32(uint32_t(crc));
}

// A PNG from its filtered scanline stream (each row starts with a filter byte).
Bytes png_file(int w, int h, int depth, int ctype, const std::string& stream,
               const std::string& plte = "", const std::string& trns = "", int interlace = 0) {
  std::string ihdr =
      be32(w) + be32(h) + std::string{char(depth), char(ctype), 0, 0, char(interlace)};
  uLongf zlen = compressBound(uLong(stream.size()));
  std::string z(zlen, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(stream.data()),
           uLong(stream.size()));
  z.resize(zlen);
  std::string f = "\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr);
  if (!plte.empty()) f += chunk("PLTE", plte);
  if (!trns.empty()) f += chunk("tRNS", trns);
  f += chunk("IDAT", z) + chunk("IEND", "");
  return Bytes(f.begin(), f.end());
}

// One-row image: the filter byte 0 and the row bytes.
Bytes png_row(int w, int depth, int ctype, std::vector<int> row, const std::string& plte = "",
              const std::string& trns = "") {
  std::string s(1, '\0');
  for (int b : row) s += char(b);
  return png_file(w, 1, depth, ctype, s, plte, trns);
}

Ints pixels(const Image& im) { return Ints(im.pixels.begin(), im.pixels.end()); }
int over_white(int v, int a) {
  return int(std::floor(v * a / 255.0 + 255 * (1 - a / 255.0) + 0.5));
}

TEST(PngDecode, GreyAtEveryDepthWithAlphaAndTrns) {
  Image g1 = decode_png(png_row(8, 1, 0, {0b10110000}), "g1");
  EXPECT_EQ(g1.channels, 1);
  EXPECT_EQ(pixels(g1), (Ints{255, 0, 255, 255, 0, 0, 0, 0}));
  EXPECT_EQ(pixels(decode_png(png_row(4, 2, 0, {0b00011011}), "g2")), (Ints{0, 85, 170, 255}));
  EXPECT_EQ(pixels(decode_png(png_row(2, 4, 0, {0x8F}), "g4")), (Ints{136, 255}));
  EXPECT_EQ(pixels(decode_png(png_row(3, 8, 0, {0, 7, 200}), "g8")), (Ints{0, 7, 200}));
  EXPECT_EQ(pixels(decode_png(png_row(2, 16, 0, {10, 10, 0xFF, 0xFF}), "g16")), (Ints{10, 255}));
  // tRNS on grey: the value 7 is transparent, so white.
  EXPECT_EQ(pixels(decode_png(png_row(2, 8, 0, {7, 8}, "", std::string{0, 7}), "gt")),
            (Ints{255, 8}));
  Image ga = decode_png(png_row(3, 8, 4, {100, 0, 100, 255, 100, 128}), "ga");
  EXPECT_EQ(ga.channels, 1);
  EXPECT_EQ(pixels(ga), (Ints{255, 100, over_white(100, 128)}));
  EXPECT_EQ(pixels(decode_png(png_row(1, 16, 4, {100, 100, 0xFF, 0xFF}), "ga16")), (Ints{100}));
}

TEST(PngDecode, ColourPaletteAndSixteenBit) {
  Image rgb = decode_png(png_row(2, 8, 2, {1, 2, 3, 250, 251, 252}), "rgb");
  EXPECT_EQ(rgb.channels, 3);
  EXPECT_EQ(pixels(rgb), (Ints{1, 2, 3, 250, 251, 252}));
  EXPECT_EQ(pixels(decode_png(png_row(1, 16, 2, {9, 9, 40, 40, 0xFF, 0xFF}), "rgb16")),
            (Ints{9, 40, 255}));
  std::string trns = std::string{0, 1, 0, 2, 0, 3};  // RGB (1, 2, 3) is transparent
  EXPECT_EQ(pixels(decode_png(png_row(2, 8, 2, {1, 2, 3, 1, 2, 4}, "", trns), "rgbt")),
            (Ints{255, 255, 255, 1, 2, 4}));
  EXPECT_EQ(
      pixels(decode_png(png_row(3, 8, 6, {10, 20, 30, 0, 10, 20, 30, 255, 200, 0, 0, 64}), "rgba")),
      (Ints{255, 255, 255, 10, 20, 30, over_white(200, 64), over_white(0, 64), over_white(0, 64)}));
  EXPECT_EQ(pixels(decode_png(png_row(1, 16, 6, {5, 5, 6, 6, 7, 7, 0xFF, 0xFF}), "rgba16")),
            (Ints{5, 6, 7}));
  const std::string plte = {char(255), 0, 0, 0, char(255), 0, 0, 0, char(255), 9, 9, 9};
  Image p8 = decode_png(png_row(4, 8, 3, {0, 1, 2, 3}, plte, std::string{0, char(128)}), "p8");
  EXPECT_EQ(p8.channels, 3);
  EXPECT_EQ(pixels(p8), (Ints{255, 255, 255, over_white(0, 128), over_white(255, 128),
                              over_white(0, 128), 0, 0, 255, 9, 9, 9}));
  EXPECT_EQ(pixels(decode_png(png_row(2, 1, 3, {0b01000000}, plte), "p1")),
            (Ints{255, 0, 0, 0, 255, 0}));
  EXPECT_EQ(pixels(decode_png(png_row(2, 2, 3, {0b11100000}, plte), "p2")),
            (Ints{9, 9, 9, 0, 0, 255}));
  EXPECT_EQ(pixels(decode_png(png_row(2, 4, 3, {0x21}, plte), "p4")), (Ints{0, 0, 255, 0, 255, 0}));
}

TEST(PngDecode, InterlacedAdam7) {
  const int W = 9, H = 9;
  auto value = [](int x, int y) { return char((x * 7 + y * 13) % 256); };
  const int passes[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                            {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  std::string stream;
  for (const auto& p : passes)
    for (int y = p[1]; y < H && p[0] < W; y += p[3]) {
      stream += '\0';
      for (int x = p[0]; x < W; x += p[2]) stream += value(x, y);
    }
  Image im = decode_png(png_file(W, H, 8, 0, stream, "", "", 1), "adam7");
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) ASSERT_EQ(im.at(y, x, 0), uint8_t(value(x, y))) << x << "," << y;
}

TEST(PngDecode, EncodeDecodeRoundTripIsExact) {
  for (int channels : {1, 3}) {
    Image im(37, 23, channels);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = uint8_t(i * 131 + i / 7);
    Image back = decode_png(encode_png(im), "round trip");
    EXPECT_EQ(back.width, 37);
    EXPECT_EQ(back.height, 23);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, im.pixels);
  }
}

TEST(PngDecode, CorruptFilesAreNamedErrors) {
  Bytes good = encode_png(Image(8, 8, 3, 77));
  EXPECT_ERROR(decode_png(Bytes(good.begin(), good.begin() + good.size() / 2), "half.png"),
               "half.png: corrupt PNG");
  Bytes bad_crc = good;
  bad_crc[30] ^= 0xFF;  // IHDR's CRC
  EXPECT_ERROR(decode_png(bad_crc, "crc.png"), "crc.png: corrupt PNG");
  EXPECT_ERROR(decode_image(Bytes{'h', 'i'}, "note.png"), "note.png: neither a PNG nor a JPEG");
}

TEST(PngDecode, DimensionsTheFileCannotHoldAreRefusedBeforeAllocating) {
  // 16384 x 16384 RGBA (1 GiB) in a 79-byte file: deflate shrinks at most 1032:1.
  Bytes huge = png_file(16384, 16384, 8, 6, std::string(100, '\0'));
  EXPECT_ERROR(decode_png(huge, "huge.png"),
               "huge.png: corrupt PNG: IHDR's 16384x16384 image needs 1073758208 bytes of image "
               "data, more than a " +
                   std::to_string(huge.size()) + "-byte file holds");
  // The bound leaves room for the best compression zlib achieves: a black 2048 x 2048 image.
  Image black = decode_png(encode_png(Image(2048, 2048, 1, 0)), "black.png");
  EXPECT_EQ(black.width, 2048);
}

// ---- JPEG, resizing, grey ----

Bytes jpeg_file(const Image& im, int quality, const std::vector<jpeg_scan_info>& scans = {}) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = im.width, c.image_height = im.height, c.input_components = im.channels;
  c.in_color_space = im.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (!scans.empty()) c.scan_info = scans.data(), c.num_scans = int(scans.size());  // progressive
  jpeg_start_compress(&c, TRUE);
  for (int y = 0; y < im.height; ++y) {
    JSAMPROW row = const_cast<JSAMPROW>(&im.pixels[size_t(y) * im.width * im.channels]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes out(buf, buf + size);
  free(buf);
  return out;
}

TEST(JpegImage, DecodesColourAndGreyAndRejectsTruncation) {
  Image im(40, 24, 3);
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 40; ++x)
      im.at(y, x, 0) = uint8_t(6 * x), im.at(y, x, 1) = uint8_t(10 * y), im.at(y, x, 2) = 128;
  Bytes jpg = jpeg_file(im, 95);
  Image back = decode_image(jpg, "smooth.jpg");
  ASSERT_EQ(back.channels, 3);
  ASSERT_EQ(back.width, 40);
  int worst = 0;
  for (size_t i = 0; i < im.pixels.size(); ++i)
    worst = std::max(worst, std::abs(int(back.pixels[i]) - im.pixels[i]));
  EXPECT_LE(worst, 12);
  Image grey = decode_jpeg(jpeg_file(to_greyscale(im), 95), "grey.jpg");
  EXPECT_EQ(grey.channels, 1);
  EXPECT_ERROR(decode_jpeg(Bytes(jpg.begin(), jpg.begin() + jpg.size() / 2), "cut.jpg"),
               "cut.jpg: corrupt JPEG");
}

TEST(JpegImage, DimensionsTheFileCannotHoldAndTooManyScansAreRefused) {
  Image im(16, 16, 3);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = uint8_t(i * 5);
  // The frame header (SOF0) made to claim side x side pixels.
  auto claiming = [&](int side) {
    Bytes b = jpeg_file(im, 90);
    for (size_t i = 2; i + 9 < b.size(); i += 2 + (b[i + 2] << 8 | b[i + 3]))
      if (b[i + 1] == 0xC0) b[i + 5] = b[i + 7] = uint8_t(side >> 8), b[i + 6] = b[i + 8] = uint8_t(side);
    return b;
  };
  const Bytes big = claiming(16384);
  EXPECT_ERROR(decode_jpeg(big, "big.jpg"),
               "big.jpg: corrupt JPEG: SOF's 16384x16384 image needs more data than a " +
                   std::to_string(big.size()) + "-byte file holds");
  EXPECT_ERROR(decode_jpeg(claiming(65000), "huge.jpg"),
               "huge.jpg: corrupt JPEG: SOF's 65000x65000 image is over 2^28 pixels");
  // A progressive file of 1 + 3 x 31 x 11 scans: AC coefficients 1..31 of each component, each
  // sent from bit 10 down to bit 0 (a valid script, libjpeg checks it).
  std::vector<jpeg_scan_info> scans = {{3, {0, 1, 2, 0}, 0, 0, 0, 0}};
  for (int c = 0; c < 3; ++c)
    for (int k = 1; k <= 31; ++k)
      for (int al = 10; al >= 0; --al)
        scans.push_back({1, {c, 0, 0, 0}, k, k, al == 10 ? 0 : al + 1, al});
  EXPECT_ERROR(decode_jpeg(jpeg_file(im, 90, scans), "scans.jpg"),
               "scans.jpg: corrupt JPEG: more than 1000 scans");
  scans.resize(1 + 31 * 11);  // 342 scans: fine
  EXPECT_EQ(decode_jpeg(jpeg_file(im, 90, scans), "scans.jpg").width, 16);
}

TEST(ImageResize, AreaDownBilinearUpCentreCropAndLuma) {
  Image im(4, 4, 1);
  for (int i = 0; i < 16; ++i) im.pixels[i] = uint8_t(i * 10);
  EXPECT_EQ(pixels(resize(im, 2, 2)), (Ints{25, 45, 105, 125}));  // 2x2 box means
  Image flat = resize(Image(3, 5, 3, 90), 11, 7);
  EXPECT_EQ(flat.pixels, std::vector<uint8_t>(11 * 7 * 3, 90));
  Image wide(100, 50, 1);  // left quarter 0, middle half 200, right quarter 0
  for (int y = 0; y < 50; ++y)
    for (int x = 25; x < 75; ++x) wide.at(y, x, 0) = 200;
  Image crop = resize_and_center_crop(wide, 32);  // 64x32, then the middle 32 columns
  EXPECT_EQ(crop.width, 32);
  EXPECT_EQ(crop.pixels, std::vector<uint8_t>(32 * 32, 200));
  Image rgb(3, 1, 3);
  rgb.at(0, 0, 0) = 255, rgb.at(0, 1, 1) = 255, rgb.at(0, 2, 2) = 255;
  EXPECT_EQ(pixels(to_greyscale(rgb)), (Ints{76, 150, 29}));  // 601 luma
}

// ---- image folders ----

TEST(ImageFolder, EmojiFolderLoadsFullyAt64) {
  const ImageDataset& d = emoji64();
  std::set<int> colour_types;
  for (const std::string& f : list_image_files(emoji_dir()))
    colour_types.insert(read_file_bytes(f).at(25));
  EXPECT_TRUE(colour_types.count(3) && colour_types.count(6) && colour_types.count(4))
      << "mixed PNG modes";
  EXPECT_EQ(d.count, int64_t(list_image_files(emoji_dir()).size()));
  EXPECT_GT(d.count, 1700);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.size, 64);
  int64_t white_corners = 0;  // transparent corners become white
  for (int64_t i = 0; i < d.count; ++i) white_corners += d.image(i)[0] == 255;
  EXPECT_GT(white_corners, d.count * 9 / 10);
}

TEST(ImageFolder, EmojiFolderAt32AndGreyscale) {
  const ImageDataset& d64 = emoji64();
  int64_t skipped = -1;
  ImageDataset d32 = load_image_folder(emoji_dir(), 32, false, &skipped);
  EXPECT_EQ(skipped, 0);
  ASSERT_EQ(d32.count, d64.count);
  ASSERT_EQ(d32.size, 32);
  ImageDataset g = load_image_folder(emoji_dir(), 32, true);
  ASSERT_EQ(g.count, d64.count);
  ASSERT_EQ(g.channels, 1);
  int worst_box = 0, worst_grey = 0;  // 64 -> 32 is the exact 2x2 mean; grey is its luma
  for (int64_t i = 0; i < d64.count; ++i)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const uint8_t* a = d64.image(i) + c * 4096;
          int mean4 = a[2 * y * 64 + 2 * x] + a[2 * y * 64 + 2 * x + 1] +
                      a[(2 * y + 1) * 64 + 2 * x] + a[(2 * y + 1) * 64 + 2 * x + 1];
          worst_box =
              std::max(worst_box, std::abs(4 * d32.image(i)[c * 1024 + y * 32 + x] - mean4));
          if (c) continue;
          const uint8_t* p = d32.image(i) + y * 32 + x;
          double luma = 0.299 * p[0] + 0.587 * p[1024] + 0.114 * p[2048];
          worst_grey =
              std::max(worst_grey, int(std::ceil(std::abs(g.image(i)[y * 32 + x] - luma))));
        }
  EXPECT_LE(worst_box, 2);   // rounding only
  EXPECT_LE(worst_grey, 2);  // grey-then-resize vs resize-then-grey
}

TEST(ImageFolder, SortedRecursiveAndSkipsCorruptWithWarning) {
  TempDir tmp;
  fs::create_directories(tmp / "sub");
  write_png(tmp / "b.png", Image(10, 10, 1, 20));
  write_png(tmp / "a.png", Image(10, 10, 1, 10));
  write_png(tmp / "sub/c.PNG", Image(12, 10, 3, 30));
  write_bytes(tmp / "broken.png", Bytes{'n', 'o', 'p', 'e'});
  Bytes half = encode_png(Image(10, 10, 1, 40));
  write_bytes(tmp / "half.png", Bytes(half.begin(), half.begin() + half.size() / 2));
  write_bytes(tmp / "notes.txt", Bytes{'x'});
  testing::internal::CaptureStderr();
  int64_t skipped = 0;
  ImageDataset d = load_image_folder(tmp.path, 8, true, &skipped);
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(d.count, 3);
  EXPECT_EQ(skipped, 2);
  EXPECT_EQ(d.image(0)[0], 10);
  EXPECT_EQ(d.image(1)[0], 20);
  EXPECT_EQ(d.image(2)[0], 30);
  EXPECT_NE(err.find(tmp / "broken.png"), std::string::npos) << err;
  EXPECT_NE(err.find(tmp / "half.png"), std::string::npos) << err;
  EXPECT_EQ(err.find("notes.txt"), std::string::npos) << err;
}

TEST(ImageFolder, EmptyMissingOrAllCorruptFolderIsAnErrorNamingIt) {
  TempDir tmp;
  EXPECT_ERROR(load_image_folder(tmp.path, 32, false), tmp.path + ": no PNG or JPEG images");
  EXPECT_ERROR(load_image_folder(tmp / "missing", 32, false), tmp / "missing");
  write_bytes(tmp / "x.jpg", Bytes{1, 2, 3});
  testing::internal::CaptureStderr();
  EXPECT_ERROR(load_image_folder(tmp.path, 32, false), tmp.path + ": none of its 1 image files");
  testing::internal::GetCapturedStderr();
}

// ---- DataLoader ----

// N images of (1, 2, 2) whose pixels all equal their index.
std::shared_ptr<const ImageDataset> indexed_dataset(int n) {
  auto d = std::make_shared<ImageDataset>();
  d->count = n, d->channels = 1, d->size = 2, d->source = "indexed";
  for (int i = 0; i < n; ++i) d->pixels.insert(d->pixels.end(), 4, uint8_t(i));
  return d;
}

std::vector<int64_t> ids_of(const Tensor& batch) {
  std::vector<float> v = batch.to_floats();
  std::vector<int64_t> ids;
  for (size_t i = 0; i < v.size(); i += 4) ids.push_back(std::lround(v[i] * 255));
  return ids;
}

TEST(DataLoader, SameSeedSameOrderNewOrderEachEpoch) {
  auto data = indexed_dataset(10);
  DataLoader a(data, 3, 42), b(data, 3, 42), other(data, 3, 43);
  EXPECT_EQ(a.batches_per_epoch(), 3);  // the tail of 1 is dropped
  std::vector<std::vector<int64_t>> epochs(3);
  for (int e = 0; e < 3; ++e)
    for (int k = 0; k < 3; ++k) {
      Tensor x = a.next();
      ASSERT_EQ(x.shape(), (Shape{3, 1, 2, 2}));
      std::vector<int64_t> ids = ids_of(x);
      EXPECT_EQ(ids, ids_of(b.next()));
      epochs[e].insert(epochs[e].end(), ids.begin(), ids.end());
    }
  EXPECT_EQ(a.position(), (LoaderPosition{3, 0}));
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  for (auto& ep : epochs)
    EXPECT_EQ(std::set<int64_t>(ep.begin(), ep.end()).size(), 9u) << "no repeats";
  EXPECT_NE(a.epoch_order(0), other.epoch_order(0));
  const std::vector<int64_t> order1 = a.epoch_order(1);
  EXPECT_EQ(std::vector<int64_t>(order1.begin(), order1.begin() + 9), epochs[1]);
}

TEST(DataLoader, ResumeFromSavedPositionGivesTheSameNextBatch) {
  auto data = indexed_dataset(50);
  DataLoader a(data, 4, 7);
  for (int k = 0; k < 14; ++k) a.next();  // into epoch 1 (12 batches per epoch)
  LoaderPosition saved = a.position();
  EXPECT_EQ(saved, (LoaderPosition{1, 2}));
  std::vector<int64_t> ids;
  Tensor expected = a.next(&ids);
  DataLoader b(data, 4, 7);
  b.next();  // its worker has already prepared batch (0, 1)
  b.set_position(saved);
  EXPECT_EQ(b.position(), saved);
  Tensor got = b.next();
  EXPECT_EQ(expected.to_floats(), got.to_floats());
  EXPECT_EQ(ids_of(got), ids);
  EXPECT_EQ(ids, b.batch_indices(saved));
  EXPECT_EQ(ids_of(a.next()), ids_of(b.next()));
  EXPECT_ERROR(b.set_position({0, 12}), "position (epoch 0, batch 12) out of range");
  EXPECT_ERROR(DataLoader(data, 51, 0), "batch size 51");
}

TEST(DataLoader, FashionMnistBatchesAreScaledImages) {
  std::shared_ptr<const ImageDataset> data(std::shared_ptr<void>(), &fashion_train());  // not owned
  DataLoader loader(data, 32, 1);
  std::vector<int64_t> ids;
  Tensor x = loader.next(&ids);
  ASSERT_EQ(x.shape(), (Shape{32, 1, 32, 32}));
  std::vector<float> v = x.to_floats();
  for (int b = 0; b < 32; ++b)
    for (int k = 0; k < 1024; ++k)
      ASSERT_EQ(v[b * 1024 + k], fashion_train().image(ids[b])[k] / 255.0f);
}

// ---- cache ----

TEST(DatasetCache, SecondLoadHitsAndChangesOrCorruptionRebuild) {
  TempDir src, cache;
  for (int i = 0; i < 5; ++i)
    write_png(src / ("im" + std::to_string(i) + ".png"), Image(20, 16, 3, uint8_t(40 * i)));
  bool hit = true;
  ImageDataset first = load_image_folder_cached(src.path, 8, false, cache.path, &hit);
  EXPECT_FALSE(hit);
  ImageDataset second = load_image_folder_cached(src.path, 8, false, cache.path, &hit);
  EXPECT_TRUE(hit);
  EXPECT_EQ(second.pixels, first.pixels);
  EXPECT_EQ(second.count, 5);
  const std::string file = image_folder_cache_path(cache.path, src.path, 8, false);
  EXPECT_TRUE(fs::exists(file));
  load_image_folder_cached(src.path, 8, true, cache.path, &hit);
  EXPECT_FALSE(hit) << "greyscale is another cache entry";
  write_png(src / "im5.png", Image(20, 16, 3, 250));  // the folder changed: rebuild
  EXPECT_EQ(load_image_folder_cached(src.path, 8, false, cache.path, &hit).count, 6);
  EXPECT_FALSE(hit);
  fs::resize_file(file, fs::file_size(file) - 10);  // truncated: warned about and rebuilt
  testing::internal::CaptureStderr();
  EXPECT_EQ(load_image_folder_cached(src.path, 8, false, cache.path, &hit).count, 6);
  EXPECT_NE(testing::internal::GetCapturedStderr().find(file), std::string::npos);
  EXPECT_FALSE(hit);
  EXPECT_TRUE(read_dataset_cache(file, image_folder_cache_key(src.path, 8, false), &second));
  EXPECT_FALSE(read_dataset_cache(file, "another key", &second));
  Bytes bytes = read_file_bytes(file);
  bytes[bytes.size() - 20] ^= 1;  // a pixel: the checksum catches it
  write_bytes(file, bytes);
  EXPECT_ERROR(read_dataset_cache(file, image_folder_cache_key(src.path, 8, false), &second),
               "checksum");
  bytes[0] = 'X';
  write_bytes(file, bytes);
  EXPECT_ERROR(read_dataset_cache(file, "", &second), file + ": corrupt (bad magic)");
  EXPECT_TRUE(fs::directory_iterator(cache.path) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(cache.path))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "temporary left behind";
}

TEST(DatasetCache, AFileRewrittenInPlaceWithItsSizeAndTimeIsDecodedAgain) {
  TempDir src, cache;
  const std::string png = src / "im.png";
  write_png(png, Image(8, 8, 1, 40));
  struct stat before {};
  ASSERT_EQ(stat(png.c_str(), &before), 0);
  bool hit = true;
  EXPECT_EQ(load_image_folder_cached(src.path, 8, true, cache.path, &hit).pixels[0], 40);
  EXPECT_FALSE(hit);
  write_png(png, Image(8, 8, 1, 200));  // the same size, other pixels ...
  struct stat after {};
  ASSERT_EQ(stat(png.c_str(), &after), 0);
  ASSERT_EQ(after.st_size, before.st_size);
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, png.c_str(), times, 0), 0);  // ... and the old modification time
  EXPECT_EQ(load_image_folder_cached(src.path, 8, true, cache.path, &hit).pixels[0], 200);
  EXPECT_FALSE(hit) << "stale pixels served from the cache";
}

TEST(DatasetCache, EmojiFolderFromCacheStartsAtOnce) {
  TempDir cache;
  write_dataset_cache(image_folder_cache_path(cache.path, emoji_dir(), 64, false), emoji64(),
                      image_folder_cache_key(emoji_dir(), 64, false));
  auto t0 = std::chrono::steady_clock::now();
  bool hit = false;
  ImageDataset d = load_dataset(emoji_dir(), 64, false, true, cache.path, &hit);
  const double s = seconds_since(t0);
  EXPECT_TRUE(hit);
  EXPECT_EQ(d.pixels, emoji64().pixels);
  EXPECT_LT(s, 1.0) << "a cache hit should only list, stat and read";
  std::cout << "[ cache ] " << d.count << " emoji from the cache in " << s << " s\n";
}

// ---- grids ----

TEST(ImageGrid, TilesClampsPadsAndWritesPng) {
  std::vector<double> v(5 * 1 * 4 * 4);
  for (int b = 0; b < 5; ++b)
    for (int k = 0; k < 16; ++k)
      v[b * 16 + k] = b == 0 ? -1.0 : b == 1 ? 2.0 : b == 2 ? 0.5 : 0.2 * b;
  Tensor batch = from_vector(v, Shape{5, 1, 4, 4});
  Image g = make_image_grid(batch, 2, 2);  // 2 per row, 3 rows, tiles of 4 + 2 padding
  ASSERT_EQ(g.width, 2 * 6 + 2);
  ASSERT_EQ(g.height, 3 * 6 + 2);
  ASSERT_EQ(g.channels, 3);
  EXPECT_EQ(g.at(0, 0, 0), 0);
  EXPECT_EQ(g.at(2, 2, 0), 0);     // tile 0, clamped from -1
  EXPECT_EQ(g.at(2, 8, 1), 255);   // tile 1, clamped from 2
  EXPECT_EQ(g.at(8, 2, 2), 128);   // tile 2, 0.5 -> round(127.5)
  EXPECT_EQ(g.at(14, 2, 0), 204);  // tile 4 at row 2
  EXPECT_EQ(g.at(14, 8, 0), 0);    // the empty sixth cell is padding
  TempDir tmp;
  save_image_grid(tmp / "steps.png", zeros(Shape{2 * 16, 3, 8, 8}), 16);  // 2 rows of T = 16
  Image back = read_image(tmp / "steps.png");
  EXPECT_EQ(back.width, 16 * 10 + 2);
  EXPECT_EQ(back.height, 2 * 10 + 2);
  EXPECT_ERROR(make_image_grid(zeros(Shape{2, 2, 4, 4})), "C = 1 or 3");
}

}  // namespace
}  // namespace fpa::test
