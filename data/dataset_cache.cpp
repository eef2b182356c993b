// dataset_cache.cpp: cache keys and paths, the cache file format, load_dataset.
//
// Cache file (native little-endian):
//   "FPAU8DS1"                                      8-byte magic (format version 1)
//   u64 key_bytes, key                              the text of image_folder_cache_key
//   u64 count N, channels C, size S, has_labels     C in {1, 3}, has_labels in {0, 1}
//   N*C*S*S pixel bytes, then N label bytes when has_labels
//   u64 checksum                                    of the pixel and label bytes
// The file must be exactly this long.
#include "data/dataset_cache.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "autograd/atomic_file.h"
#include "autograd/error.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"

namespace fpa {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[9] = "FPAU8DS1";

uint64_t fnv1a(const std::string& s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// A fast 64-bit checksum, 8 bytes a step (the data can be gigabytes).
uint64_t checksum(const uint8_t* p, size_t n, uint64_t h = 0x9e3779b97f4a7c15ull) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h ^ n;
}

// The checksum of a whole file's bytes (read in pieces), and its size.
uint64_t file_checksum(const std::string& path, uint64_t* size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  FPA_CHECK(f, "cannot read ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> buf(1 << 20);
  uint64_t h = 0x9e3779b97f4a7c15ull, n = 0;
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) h = checksum(buf.data(), got, h), n += got;
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  FPA_CHECK(!failed, "cannot read ", path, ": read error");
  *size = n;
  return h;
}

std::string hex64(uint64_t v) {
  return fmt::format("{:016x}", v);
}

std::string canonical_dir(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  return ec ? dir : p.string();
}

// Reads exactly `bytes` or throws naming the file.
void read_exact(std::FILE* f, void* dst, size_t bytes, const std::string& path, const char* what) {
  if (bytes == 0) return;
  FPA_CHECK(std::fread(dst, 1, bytes, f) == bytes, "dataset cache ", path,
            ": corrupt (truncated while reading ", what, ")");
}

ImageDataset fashion_mnist_at(bool train, int size, bool greyscale) {
  ImageDataset d = load_fashion_mnist(train);
  if (size == d.size && greyscale) return d;
  FPA_CHECK(size > 0, "fashion-mnist: image size ", size, " must be positive");
  ImageDataset out;
  out.count = d.count, out.channels = greyscale ? 1 : 3, out.size = size;
  out.labels = std::move(d.labels);
  out.source = d.source;
  out.pixels.resize(size_t(out.count * out.image_bytes()));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < d.count; ++i) {
    Image img = planar_to_image(d.image(i), 1, int(d.size), int(d.size));
    img = resize(img, size, size);
    image_to_planar(greyscale ? img : to_rgb(img), &out.pixels[size_t(i * out.image_bytes())]);
  }
  return out;
}

}  // namespace

std::string default_cache_dir() {
  if (const char* d = std::getenv("FPA_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/fpa";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/fpa";
  return (fs::temp_directory_path() / "fpa-cache").string();
}

std::string image_folder_cache_key(const std::string& dir, int size, bool greyscale) {
  const std::string root = canonical_dir(dir);
  const std::vector<std::string> files = list_image_files(dir);
  // Each file's bytes hashed (in parallel), then the names, sizes and hashes in order: a file
  // rewritten with the same size and time still changes the key.
  std::vector<uint64_t> content(files.size()), bytes(files.size());
  std::vector<std::string> errors(files.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t i = 0; i < files.size(); ++i) {
    try {
      content[i] = file_checksum(files[i], &bytes[i]);
    } catch (const Error& e) {
      errors[i] = e.what();
    }
  }
  int64_t total = 0;
  uint64_t list_hash = fnv1a("");
  for (size_t i = 0; i < files.size(); ++i) {
    FPA_CHECK(errors[i].empty(), "image folder ", dir, ": ", errors[i]);
    total += int64_t(bytes[i]);
    const std::string rel = files[i].size() > dir.size() ? files[i].substr(dir.size()) : files[i];
    list_hash = fnv1a(rel + '\0' + std::to_string(bytes[i]) + '\0' + hex64(content[i]) + '\0', list_hash);
  }
  return fmt::format("source={}\nsize={}\ngreyscale={}\nfiles={}\nbytes={}\ncontent_hash={}\n", root, size,
                     greyscale ? 1 : 0, files.size(), total, hex64(list_hash));
}

std::string image_folder_cache_path(const std::string& cache_dir, const std::string& dir, int size,
                                    bool greyscale) {
  const std::string root = canonical_dir(dir);
  std::string name = fs::path(root).filename().string();
  for (char& c : name)
    if (!std::isalnum((unsigned char)c) && c != '-' && c != '_') c = '_';
  if (name.empty()) name = "root";
  return (fs::path(cache_dir.empty() ? default_cache_dir() : cache_dir) /
          (name + "-" + hex64(fnv1a(root)).substr(0, 12) + "-s" + std::to_string(size) +
           (greyscale ? "-grey" : "-rgb") + ".u8cache"))
      .string();
}

void write_dataset_cache(const std::string& path, const ImageDataset& d, const std::string& key) {
  const size_t pixel_bytes = size_t(d.count * d.image_bytes());
  FPA_CHECK(
      d.pixels.size() == pixel_bytes && (d.labels.empty() || int64_t(d.labels.size()) == d.count),
      "dataset cache ", path, ": inconsistent dataset (", d.pixels.size(), " pixel bytes for ",
      d.count, "x", d.channels, "x", d.size, "x", d.size, ", ", d.labels.size(), " labels)");
  AtomicFile w(path);
  auto u64 = [&w](uint64_t v) { w.write(&v, 8); };
  w.write(kMagic, 8);
  u64(key.size());
  w.write(key.data(), key.size());
  u64(uint64_t(d.count)), u64(uint64_t(d.channels)), u64(uint64_t(d.size));
  u64(d.labels.empty() ? 0 : 1);
  w.write(d.pixels.data(), pixel_bytes);
  w.write(d.labels.data(), d.labels.size());
  u64(checksum(d.labels.data(), d.labels.size(), checksum(d.pixels.data(), pixel_bytes)));
  w.commit();
}

bool read_dataset_cache(const std::string& path, const std::string& key, ImageDataset* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  struct Closer {
    std::FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{f};
  struct stat st {};
  FPA_CHECK(fstat(fileno(f), &st) == 0, "dataset cache ", path, ": cannot stat");
  const uint64_t file_bytes = uint64_t(st.st_size);

  char magic[8];
  read_exact(f, magic, 8, path, "the magic");
  FPA_CHECK(std::memcmp(magic, kMagic, 8) == 0, "dataset cache ", path, ": corrupt (bad magic)");
  uint64_t key_bytes = 0;
  read_exact(f, &key_bytes, 8, path, "the key length");
  FPA_CHECK(key_bytes < (1u << 20) && 16 + key_bytes <= file_bytes, "dataset cache ", path,
            ": corrupt (key length ", key_bytes, ")");
  std::string stored(key_bytes, '\0');
  read_exact(f, stored.data(), key_bytes, path, "the key");
  if (stored != key) return false;  // written for another folder state: stale

  uint64_t hdr[4];  // count, channels, size, has_labels
  read_exact(f, hdr, sizeof hdr, path, "the header");
  const uint64_t n = hdr[0], c = hdr[1], s = hdr[2], has_labels = hdr[3];
  FPA_CHECK((c == 1 || c == 3) && s > 0 && s <= 65536 && has_labels <= 1 && n < (uint64_t(1) << 40),
            "dataset cache ", path, ": corrupt header (", n, " images, ", c, " channels, size ", s,
            ")");
  const uint64_t pixel_bytes = n * c * s * s, label_bytes = has_labels ? n : 0;
  const uint64_t expect = 8 + 8 + key_bytes + sizeof hdr + pixel_bytes + label_bytes + 8;
  FPA_CHECK(file_bytes == expect, "dataset cache ", path, ": corrupt (", file_bytes,
            " bytes, expected ", expect, " for ", n, "x", c, "x", s, "x", s, ")");
  ImageDataset d;
  d.count = int64_t(n), d.channels = int64_t(c), d.size = int64_t(s);
  d.pixels.resize(pixel_bytes);
  d.labels.resize(label_bytes);
  read_exact(f, d.pixels.data(), pixel_bytes, path, "the pixels");
  read_exact(f, d.labels.data(), label_bytes, path, "the labels");
  uint64_t sum = 0;
  read_exact(f, &sum, 8, path, "the checksum");
  FPA_CHECK(sum == checksum(d.labels.data(), label_bytes, checksum(d.pixels.data(), pixel_bytes)),
            "dataset cache ", path, ": corrupt (checksum mismatch)");
  *out = std::move(d);
  return true;
}

ImageDataset load_image_folder_cached(const std::string& dir, int size, bool greyscale,
                                      const std::string& cache_dir, bool* cache_hit) {
  if (cache_hit) *cache_hit = false;
  const std::string key = image_folder_cache_key(dir, size, greyscale);
  const std::string path = image_folder_cache_path(cache_dir, dir, size, greyscale);
  ImageDataset d;
  try {
    if (read_dataset_cache(path, key, &d)) {
      d.source = dir;
      if (cache_hit) *cache_hit = true;
      return d;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "warning: {}; rebuilding it\n", e.what());
  }
  d = load_image_folder(dir, size, greyscale);
  try {
    fs::create_directories(fs::path(path).parent_path());
    write_dataset_cache(path, d, key);
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: dataset cache not written ({}); the next run will decode {} again\n", e.what(), dir);
  }
  return d;
}

ImageDataset load_dataset(const std::string& source, int size, bool greyscale, bool use_cache,
                          const std::string& cache_dir, bool* cache_hit) {
  if (cache_hit) *cache_hit = false;
  if (source == "fashion-mnist" || source == "fashion-mnist-train")
    return fashion_mnist_at(true, size, greyscale);
  if (source == "fashion-mnist-test") return fashion_mnist_at(false, size, greyscale);
  if (!use_cache) return load_image_folder(source, size, greyscale);
  return load_image_folder_cached(source, size, greyscale, cache_dir, cache_hit);
}

}  // namespace fpa
