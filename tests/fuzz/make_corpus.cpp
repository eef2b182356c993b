// make_corpus.cpp: writes the seed inputs of the fuzz targets into DIR/<target>/seed-* (make
// fuzz-corpus writes tests/fuzz/corpus): small valid files from the engine's own writers, from
// libpng / libjpeg where the engine has no writer, and from real data (emoji PNGs of Debian's
// ruby-gemojione, the first images of Fashion-MNIST from dataset-fashion-mnist). Beside them
// are the finding-* inputs that once broke a reader and the inputs the fuzzers found new
// coverage with (tests/fuzz/run.sh says how to add them); this leaves those alone.
#include <png.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "data/fashion_mnist.h"
#include "data/image_io.h"
#include "nn/safetensors.h"
#include "ops/ops.h"

namespace {

using Bytes = std::vector<uint8_t>;
using namespace fpa;
std::string out_dir;

void put(const std::string& target, const std::string& name, const Bytes& b) {
  std::filesystem::create_directories(out_dir + "/" + target);
  write_file_bytes(out_dir + "/" + target + "/seed-" + name, b);
}

Image gradient(int w, int h, int channels) {
  Image im(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) im.at(y, x, c) = uint8_t(x * 255 / w + c * 80 + y * 7);
  return im;
}

// ---- safetensors: the engine's writer, a hand-built half-precision file, PyTorch's writer ----

void safetensors_seeds() {
  const std::string tmp = out_dir + "/tmp.safetensors";
  auto saved = [&](const std::vector<std::pair<std::string, Tensor>>& t,
                   const std::map<std::string, std::string>& m) {
    nn::save_safetensors(tmp, t, m);
    Bytes b = read_file_bytes(tmp);
    std::filesystem::remove(tmp);
    return b;
  };
  put("safetensors", "f32-metadata.safetensors",
      saved({{"g.w", reshape(arange(6, DType::f32), {2, 3})}, {"g.b", full({3}, 0.5, DType::f32)}},
            {{"step", "7"}, {"preset", "cpu-small"}}));
  put("safetensors", "f64-shapes.safetensors",
      saved({{"scalar", full(Shape{}, 2.0, DType::f64)},
             {"empty", zeros({0, 4}, DType::f64)},
             {"five_d", reshape(arange(4, DType::f64), {1, 1, 2, 1, 2})}},
            {}));
  std::string header = R"({"h\u00e9\n":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                       R"("bf":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  Bytes b(8);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  for (uint8_t v : {0x00, 0x3C, 0x01, 0x80, 0x80, 0x3F, 0xC0, 0x7F}) b.push_back(v);  // 1, -2^-24; 1, nan
  put("safetensors", "f16-bf16.safetensors", b);
  put("safetensors", "pytorch-losses.safetensors", read_file_bytes("tests/fixtures/losses.safetensors"));
}

// ---- PNG: real emoji in each colour mode, the engine's encoder, libpng's 16-bit ----

void png_seeds() {
  const std::string emoji = "/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png/";
  // 1-, 2- and 4-bit palette, grey + alpha, grey, RGBA, 8-bit palette: the smallest of each.
  for (const char* name : {"2796", "1F53B", "2797", "26AA", "1F533", "1F539", "1F4BE"})
    put("png", std::string("emoji-") + name + ".png", read_file_bytes(emoji + name + ".png"));
  put("png", "engine-grey.png", encode_png(gradient(7, 5, 1)));
  put("png", "engine-rgb.png", encode_png(gradient(9, 4, 3)));
  png_image im{};  // 16-bit grey + alpha through libpng's simplified writer
  im.version = PNG_IMAGE_VERSION, im.width = 5, im.height = 3, im.format = PNG_FORMAT_LINEAR_Y_ALPHA;
  std::vector<uint16_t> px(5 * 3 * 2);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint16_t(i * 4000);
  png_alloc_size_t size = 0;
  png_image_write_to_memory(&im, nullptr, &size, 0, px.data(), 0, nullptr);
  Bytes b(size);
  FPA_CHECK(png_image_write_to_memory(&im, b.data(), &size, 0, px.data(), 0, nullptr), "png: ", im.message);
  put("png", "libpng-grey-alpha-16.png", b);
}

// ---- JPEG: libjpeg, baseline / progressive / arithmetic / restarts, grey, colour, CMYK ----

Bytes jpeg(const Image& im, bool cmyk, bool progressive, bool arithmetic, int restart, bool subsample) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);  // errors exit: this tool's inputs are fixed
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = im.width, c.image_height = im.height;
  c.input_components = cmyk ? 4 : im.channels;
  c.in_color_space = cmyk ? JCS_CMYK : im.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 80, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  c.arith_code = arithmetic;
  c.restart_interval = restart;
  if (!subsample && im.channels == 3) c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  const int row_bytes = im.width * c.input_components;
  std::vector<uint8_t> row(row_bytes);
  while (c.next_scanline < c.image_height) {
    for (int x = 0; x < row_bytes; ++x)  // CMYK: the RGB bytes and a fourth from the x position
      row[x] = cmyk ? (x % 4 == 3 ? uint8_t(x * 3) : im.at(c.next_scanline, x / 4, x % 4))
                    : im.pixels[c.next_scanline * row_bytes + x];
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes b(mem, mem + size);
  free(mem);
  return b;
}

void jpeg_seeds() {
  const Image rgb = gradient(24, 16, 3), grey = gradient(16, 16, 1);
  put("jpeg", "baseline-420.jpg", jpeg(rgb, false, false, false, 0, true));
  put("jpeg", "grey.jpg", jpeg(grey, false, false, false, 0, false));
  put("jpeg", "progressive.jpg", jpeg(rgb, false, true, false, 0, true));
  put("jpeg", "arithmetic-restarts-444.jpg", jpeg(rgb, false, false, true, 1, false));
  put("jpeg", "cmyk-adobe.jpg", jpeg(rgb, true, false, false, 0, false));
}

// ---- Fashion-MNIST: the first images of the real files, in fuzz_fashion_mnist's layout ----

Bytes gunzip_file(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  FPA_CHECK(gz, "cannot open ", path);
  Bytes b, buf(1 << 16);
  for (int n; (n = gzread(gz, buf.data(), unsigned(buf.size()))) > 0;)
    b.insert(b.end(), buf.begin(), buf.begin() + n);
  gzclose(gz);
  return b;
}

Bytes gzip(const Bytes& raw, int level) {
  z_stream z{};
  FPA_CHECK(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK, "zlib");
  Bytes out(deflateBound(&z, raw.size()) + 32);
  z.next_in = const_cast<Bytef*>(raw.data()), z.avail_in = uInt(raw.size());
  z.next_out = out.data(), z.avail_out = uInt(out.size());
  FPA_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "zlib: deflate");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The first `count` images and labels of a split, their headers' count set to it. Level 0
// stores the IDX bytes as they are, so that mutations reach the headers' fields.
Bytes first_of(const std::string& prefix, uint32_t count, int level = 9) {
  Bytes images = gunzip_file(prefix + "-images-idx3-ubyte.gz"),
        labels = gunzip_file(prefix + "-labels-idx1-ubyte.gz");
  images.resize(16 + size_t(count) * 28 * 28), labels.resize(8 + count);
  const uint8_t be[4] = {uint8_t(count >> 24), uint8_t(count >> 16), uint8_t(count >> 8), uint8_t(count)};
  std::memcpy(&images[4], be, 4), std::memcpy(&labels[4], be, 4);
  const Bytes gi = gzip(images, level), gl = gzip(labels, level);
  const uint32_t n = uint32_t(gi.size());
  Bytes b(reinterpret_cast<const uint8_t*>(&n), reinterpret_cast<const uint8_t*>(&n) + 4);
  b.insert(b.end(), gi.begin(), gi.end());
  b.insert(b.end(), gl.begin(), gl.end());
  return b;
}

void fashion_mnist_seeds() {
  const std::string dir = fashion_mnist_dir();
  put("fashion_mnist", "t10k-first3.idx.gz", first_of(dir + "/t10k", 3));
  put("fashion_mnist", "train-first1.idx.gz", first_of(dir + "/train", 1));
  put("fashion_mnist", "t10k-first2-stored.idx.gz", first_of(dir + "/t10k", 2, 0));
  Bytes cut = read_file_bytes(dir + "/train-images-idx3-ubyte.gz"),
        labels = read_file_bytes(dir + "/train-labels-idx1-ubyte.gz");
  cut.resize(1500);  // the real files cut short: refused
  const uint32_t n = uint32_t(cut.size());
  Bytes b(reinterpret_cast<const uint8_t*>(&n), reinterpret_cast<const uint8_t*>(&n) + 4);
  b.insert(b.end(), cut.begin(), cut.end());
  b.insert(b.end(), labels.begin(), labels.begin() + 500);
  put("fashion_mnist", "train-cut.idx.gz", b);
}

// ---- GIF: encoder inputs in fuzz_gif's layout (fuzz_targets.cpp) ----

void gif_seeds() {
  put("gif", "grey-noise-2-frames", {100, 100, 1, 1 | 4, 0, 10, 0});
  Bytes colour = {8, 6, 2, 3, 1, 10, 0, 20, 0, 50, 0};  // 3 RGB frames, 3 delays, then pixels
  for (int i = 0; i < 48; ++i) colour.push_back(uint8_t(i * 37));
  put("gif", "colour-3-frames", colour);
  put("gif", "colour-noise-1-frame", {90, 90, 0, 3 | 4, 0, 4, 0});
  put("gif", "grey-1x1", {1, 1, 0, 1, 0, 0, 0, 200});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: make_corpus DIR (run from the repository root)\n"), 2;
  out_dir = argv[1];
  std::filesystem::create_directories(out_dir);
  safetensors_seeds();
  png_seeds();
  jpeg_seeds();
  fashion_mnist_seeds();
  gif_seeds();
  std::printf("make_corpus: seeds written under %s\n", out_dir.c_str());
  return 0;
}
