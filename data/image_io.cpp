// image_io.cpp: PNG and JPEG decoding (libpng, libjpeg), PNG encoding, resizing, colour
// conversion, file reading/writing, and random datasets. (Animated GIFs: gif.cpp.)
//
// libpng and libjpeg report errors by longjmp. Each decoder keeps all its state in a struct
// owned by the caller and calls setjmp in a function that constructs no C++ object after
// it, so a jump never skips a destructor; the caller turns the failure into an fpa::Error.
#include "data/image_io.h"

#include <csetjmp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <cerrno>
#include <memory>

#include <png.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "autograd/atomic_file.h"
#include "autograd/error.h"
#include "autograd/philox.h"

namespace fpa {

Image::Image(int w, int h, int c, uint8_t fill)
    : width(w), height(h), channels(c), pixels(size_t(w) * h * c, fill) {}

namespace {

constexpr int64_t kMaxPixels = int64_t(1) << 28;  // refuse absurd dimensions before allocating
// Dimensions a file is too short to hold are refused before anything is allocated for them.
// PNG: deflate shrinks the filtered image data (a filter byte, then the row) at most 1032:1.
// JPEG: every 8x8 block costs at least one bit of Huffman-coded data; 4 times that, 2048
// pixels a byte, leaves room for arithmetic coding. And at most 1000 scans (a progressive
// file's scans each pass over the whole image; encoders write about 10).
constexpr double kMaxDeflateRatio = 1032, kMaxJpegPixelsPerByte = 2048;
constexpr int kMaxJpegScans = 1000;

// Composites (H, W, C+1) with alpha last over white into (H, W, C).
Image composite_over_white(const std::vector<uint8_t>& src, int w, int h, int colour) {
  Image out(w, h, colour);
  const int in_ch = colour + 1;
  for (size_t p = 0; p < size_t(w) * h; ++p) {
    const uint8_t* s = &src[p * in_ch];
    const int a = s[colour];
    for (int c = 0; c < colour; ++c)
      out.pixels[p * colour + c] = uint8_t((s[c] * a + 255 * (255 - a) + 127) / 255);
  }
  return out;
}

Image from_raw(std::vector<uint8_t>& raw, int w, int h, int ch) {
  if (ch == 2 || ch == 4) return composite_over_white(raw, w, h, ch - 1);
  Image out;
  out.width = w, out.height = h, out.channels = ch;
  out.pixels.swap(raw);
  return out;
}

// ---- PNG decoding ----

struct PngDecodeState {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = "";
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, channels) 8-bit: G, GA, RGB or RGBA
  std::vector<png_bytep> rows;
};

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngDecodeState*>(png_get_io_ptr(png));
  if (s->size - s->pos < n) png_error(png, "file is truncated");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

void png_on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngDecodeState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", msg);
  longjmp(png_jmpbuf(png), 1);
}

void png_on_warning(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile"

// Returns false with s->message set on failure. No C++ object is created after setjmp.
bool png_decode_into(PngDecodeState* s) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, png_on_error, png_on_warning);
  if (!png) return std::snprintf(s->message, sizeof s->message, "out of memory"), false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return std::snprintf(s->message, sizeof s->message, "out of memory"), false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, s, png_read_memory);
  png_read_info(png, info);
  const double raw_bytes =
      (double(png_get_rowbytes(png, info)) + 1) * png_get_image_height(png, info);
  if (raw_bytes > kMaxDeflateRatio * double(s->size)) {
    char what[160];
    std::snprintf(
        what, sizeof what,
        "IHDR's %ux%u image needs %.0f bytes of image data, more than a %zu-byte file holds",
        png_get_image_width(png, info), png_get_image_height(png, info), raw_bytes, s->size);
    png_error(png, what);
  }
  png_set_expand(png);    // palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha
  png_set_scale_16(png);  // 16 -> 8 bits, rounded
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  s->width = int(png_get_image_width(png, info));
  s->height = int(png_get_image_height(png, info));
  s->channels = png_get_channels(png, info);
  if (int64_t(s->width) * s->height > kMaxPixels) png_error(png, "image too large");
  if (png_get_rowbytes(png, info) != size_t(s->width) * s->channels)
    png_error(png, "unexpected row size");
  s->pixels.resize(size_t(s->width) * s->height * s->channels);
  s->rows.resize(s->height);
  for (int y = 0; y < s->height; ++y) s->rows[y] = &s->pixels[size_t(y) * s->width * s->channels];
  png_read_image(png, s->rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// ---- JPEG decoding ----

struct JpegDecodeState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "";
  bool truncated = false;
  int width = 0, height = 0, channels = 0;
  bool cmyk = false, adobe_inverted = false;
  std::vector<uint8_t> pixels;  // (H, W, channels): G, RGB or CMYK
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* s = reinterpret_cast<JpegDecodeState*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, s->message);
  longjmp(s->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  auto* s = reinterpret_cast<JpegDecodeState*>(cinfo->client_data);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) s->truncated = true;
}

// Refuses the file at its kMaxJpegScans + 1st scan.
void jpeg_on_progress(j_common_ptr cinfo) {
  auto* s = reinterpret_cast<JpegDecodeState*>(cinfo->client_data);
  if (s->cinfo.input_scan_number <= kMaxJpegScans) return;
  std::snprintf(s->message, sizeof s->message, "more than %d scans", kMaxJpegScans);
  longjmp(s->jump, 1);
}

bool jpeg_decode_into(JpegDecodeState* s, const std::vector<uint8_t>& bytes) {
  std::memset(&s->cinfo, 0, sizeof s->cinfo);
  s->cinfo.err = jpeg_std_error(&s->err);
  s->err.error_exit = jpeg_on_error;
  s->err.emit_message = jpeg_on_message;
  s->cinfo.client_data = s;
  if (setjmp(s->jump)) {
    jpeg_destroy_decompress(&s->cinfo);
    return false;
  }
  jpeg_create_decompress(&s->cinfo);
  s->cinfo.client_data = s;  // jpeg_create_decompress clears the struct except err
  s->progress.progress_monitor = jpeg_on_progress;
  s->cinfo.progress = &s->progress;
  jpeg_mem_src(&s->cinfo, bytes.data(), (unsigned long)bytes.size());
  jpeg_read_header(&s->cinfo, TRUE);
  const unsigned w = s->cinfo.image_width, h = s->cinfo.image_height;
  if (double(w) * h > kMaxPixels || double(w) * h > kMaxJpegPixelsPerByte * double(bytes.size())) {
    if (double(w) * h > kMaxPixels)
      std::snprintf(s->message, sizeof s->message, "SOF's %ux%u image is over 2^28 pixels", w, h);
    else
      std::snprintf(s->message, sizeof s->message,
                    "SOF's %ux%u image needs more data than a %zu-byte file holds", w, h, bytes.size());
    longjmp(s->jump, 1);
  }
  J_COLOR_SPACE in = s->cinfo.jpeg_color_space;
  s->cmyk = in == JCS_CMYK || in == JCS_YCCK;
  s->adobe_inverted = s->cmyk && s->cinfo.saw_Adobe_marker;
  s->cinfo.out_color_space = in == JCS_GRAYSCALE ? JCS_GRAYSCALE : s->cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&s->cinfo);
  s->width = int(s->cinfo.output_width);
  s->height = int(s->cinfo.output_height);
  s->channels = s->cinfo.output_components;
  s->pixels.resize(size_t(s->width) * s->height * s->channels);
  while (s->cinfo.output_scanline < s->cinfo.output_height) {
    if (s->truncated) ERREXIT(&s->cinfo, JWRN_JPEG_EOF);  // no need to decode the rest
    JSAMPROW row = &s->pixels[size_t(s->cinfo.output_scanline) * s->width * s->channels];
    jpeg_read_scanlines(&s->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s->cinfo);
  jpeg_destroy_decompress(&s->cinfo);
  return true;
}

bool starts_with(const std::vector<uint8_t>& b, const char* magic, size_t n) {
  return b.size() >= n && std::memcmp(b.data(), magic, n) == 0;
}

// ---- PNG encoding ----

struct PngEncodeState {
  std::vector<uint8_t> out;
  std::vector<png_bytep> rows;
  char message[256] = "";
};

void png_write_memory(png_structp png, png_bytep data, png_size_t n) {
  auto* s = static_cast<PngEncodeState*>(png_get_io_ptr(png));
  s->out.insert(s->out.end(), data, data + n);
}
void png_flush_memory(png_structp) {}

void png_on_write_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngEncodeState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", msg);
  longjmp(png_jmpbuf(png), 1);
}

bool png_encode_into(PngEncodeState* s, const Image& image) {
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, s, png_on_write_error, png_on_warning);
  if (!png) return std::snprintf(s->message, sizeof s->message, "out of memory"), false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return std::snprintf(s->message, sizeof s->message, "out of memory"), false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, s, png_write_memory, png_flush_memory);
  png_set_IHDR(png, info, image.width, image.height, 8,
               image.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, s->rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// ---- resampling ----

struct Tap {
  int index;
  float weight;
};

// For each of `dst` output positions along an axis of `src` pixels: the source taps.
std::vector<std::vector<Tap>> axis_taps(int src, int dst) {
  std::vector<std::vector<Tap>> taps(dst);
  const double scale = double(src) / dst;
  for (int o = 0; o < dst; ++o) {
    if (dst < src) {  // area: the overlap of [o, o+1) * scale with each source pixel
      const double lo = o * scale, hi = (o + 1) * scale;
      for (int i = int(std::floor(lo)); i < std::min(src, int(std::ceil(hi))); ++i) {
        double w = std::min(hi, i + 1.0) - std::max(lo, double(i));
        if (w > 1e-9) taps[o].push_back({i, float(w / scale)});
      }
    } else {  // bilinear, half-pixel centres, edges clamped
      const double x = std::clamp((o + 0.5) * scale - 0.5, 0.0, double(src - 1));
      const int i0 = int(x);
      const float f = float(x - i0);
      taps[o].push_back({i0, 1.0f - f});
      if (f > 0) taps[o].push_back({i0 + 1, f});
    }
  }
  return taps;
}

}  // namespace

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& name) {
  FPA_CHECK(starts_with(bytes, "\x89PNG\r\n\x1a\n", 8), name, ": not a PNG file (bad signature)");
  PngDecodeState s;
  s.data = bytes.data(), s.size = bytes.size();
  FPA_CHECK(png_decode_into(&s), name, ": corrupt PNG: ", s.message);
  return from_raw(s.pixels, s.width, s.height, s.channels);
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name) {
  FPA_CHECK(starts_with(bytes, "\xff\xd8\xff", 3), name, ": not a JPEG file (bad signature)");
  auto s = std::make_unique<JpegDecodeState>();
  FPA_CHECK(jpeg_decode_into(s.get(), bytes), name, ": corrupt JPEG: ", s->message);
  FPA_CHECK(!s->truncated, name, ": corrupt JPEG: file is truncated");
  if (!s->cmyk) return from_raw(s->pixels, s->width, s->height, s->channels);
  Image out(s->width, s->height, 3);  // CMYK: R = (255 - C)(255 - K) / 255 (Adobe stores inverted)
  for (size_t p = 0; p < size_t(s->width) * s->height; ++p) {
    const uint8_t* q = &s->pixels[p * 4];
    int k = s->adobe_inverted ? q[3] : 255 - q[3];
    for (int c = 0; c < 3; ++c) {
      int v = s->adobe_inverted ? q[c] : 255 - q[c];
      out.pixels[p * 3 + c] = uint8_t((v * k + 127) / 255);
    }
  }
  return out;
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (starts_with(bytes, "\x89PNG", 4)) return decode_png(bytes, name);
  if (starts_with(bytes, "\xff\xd8\xff", 3)) return decode_jpeg(bytes, name);
  fail(name, ": neither a PNG nor a JPEG file (", bytes.size(), " bytes, unknown signature)");
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  FPA_CHECK(f, path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  bool ok = !std::ferror(f);
  std::fclose(f);
  FPA_CHECK(ok, path, ": read error");
  return bytes;
}

Image read_image(const std::string& path) { return decode_image(read_file_bytes(path), path); }

std::vector<uint8_t> encode_png(const Image& image) {
  FPA_CHECK(image.channels == 1 || image.channels == 3, "encode_png: ", image.channels,
            " channels (expected 1 or 3)");
  FPA_CHECK(image.width > 0 && image.height > 0 &&
                image.pixels.size() == size_t(image.width) * image.height * image.channels,
            "encode_png: ", image.width, "x", image.height, "x", image.channels, " image has ",
            image.pixels.size(), " bytes");
  PngEncodeState s;
  s.rows.resize(image.height);
  for (int y = 0; y < image.height; ++y)
    s.rows[y] = const_cast<png_bytep>(&image.pixels[size_t(y) * image.width * image.channels]);
  FPA_CHECK(png_encode_into(&s, image), "encode_png: ", s.message);
  return std::move(s.out);
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomically(path, bytes);
}

void write_png(const std::string& path, const Image& image) {
  write_file_bytes(path, encode_png(image));
}

Image to_greyscale(const Image& image) {
  if (image.channels == 1) return image;
  FPA_CHECK(image.channels == 3, "to_greyscale: ", image.channels, " channels");
  Image out(image.width, image.height, 1);
  for (size_t p = 0; p < out.pixels.size(); ++p) {
    const uint8_t* s = &image.pixels[p * 3];
    // 0.299, 0.587, 0.114 in 1/1000ths, rounded.
    out.pixels[p] = uint8_t((299 * s[0] + 587 * s[1] + 114 * s[2] + 500) / 1000);
  }
  return out;
}

Image to_rgb(const Image& image) {
  if (image.channels == 3) return image;
  FPA_CHECK(image.channels == 1, "to_rgb: ", image.channels, " channels");
  Image out(image.width, image.height, 3);
  for (size_t p = 0; p < image.pixels.size(); ++p)
    out.pixels[p * 3] = out.pixels[p * 3 + 1] = out.pixels[p * 3 + 2] = image.pixels[p];
  return out;
}

Image resize(const Image& image, int width, int height) {
  FPA_CHECK(width > 0 && height > 0 && image.width > 0 && image.height > 0, "resize: ", image.width,
            "x", image.height, " -> ", width, "x", height);
  if (width == image.width && height == image.height) return image;
  const int C = image.channels;
  auto xt = axis_taps(image.width, width), yt = axis_taps(image.height, height);
  std::vector<float> mid(size_t(image.height) * width * C, 0.0f);  // (H_in, W_out, C)
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < width; ++x)
      for (const Tap& t : xt[x])
        for (int c = 0; c < C; ++c)
          mid[(size_t(y) * width + x) * C + c] += t.weight * image.at(y, t.index, c);
  Image out(width, height, C);
  std::vector<float> acc(size_t(width) * C);
  for (int y = 0; y < height; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (const Tap& t : yt[y]) {
      const float* row = &mid[size_t(t.index) * width * C];
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += t.weight * row[i];
    }
    for (size_t i = 0; i < acc.size(); ++i)
      out.pixels[size_t(y) * width * C + i] = uint8_t(std::clamp(acc[i] + 0.5f, 0.0f, 255.0f));
  }
  return out;
}

Image resize_and_center_crop(const Image& image, int size) {
  FPA_CHECK(size > 0, "resize_and_center_crop: size ", size);
  FPA_CHECK(image.width > 0 && image.height > 0, "resize_and_center_crop: empty image");
  int w = size, h = size;
  if (image.width < image.height)
    h = std::max(size, int(std::lround(double(image.height) * size / image.width)));
  else
    w = std::max(size, int(std::lround(double(image.width) * size / image.height)));
  Image scaled = resize(image, w, h);
  if (w == size && h == size) return scaled;
  const int x0 = (w - size) / 2, y0 = (h - size) / 2, C = image.channels;
  Image out(size, size, C);
  for (int y = 0; y < size; ++y)
    std::memcpy(&out.pixels[size_t(y) * size * C], &scaled.pixels[(size_t(y + y0) * w + x0) * C],
                size_t(size) * C);
  return out;
}

void image_to_planar(const Image& image, uint8_t* dst) {
  const size_t hw = size_t(image.width) * image.height;
  for (size_t p = 0; p < hw; ++p)
    for (int c = 0; c < image.channels; ++c) dst[c * hw + p] = image.pixels[p * image.channels + c];
}

Image planar_to_image(const uint8_t* src, int channels, int height, int width) {
  Image out(width, height, channels);
  const size_t hw = size_t(width) * height;
  for (size_t p = 0; p < hw; ++p)
    for (int c = 0; c < channels; ++c) out.pixels[p * channels + c] = src[c * hw + p];
  return out;
}

ImageDataset random_dataset(int64_t count, int64_t channels, int64_t size, uint64_t seed) {
  ImageDataset d;
  d.count = count, d.channels = channels, d.size = size, d.source = "random";
  d.pixels.resize(size_t(count * channels * size * size));
  for (size_t i = 0; i < d.pixels.size(); ++i) d.pixels[i] = uint8_t(philox4x32(i, seed).v[0] >> 24);
  return d;
}

}  // namespace fpa
