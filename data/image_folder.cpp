// image_folder.cpp: finds the image files, decodes them in parallel into per-file slots, then
// keeps the good ones in path order (so the thread count never changes the result).
#include "data/image_folder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "autograd/error.h"

namespace fpa {

namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& dir) {
  std::error_code ec;
  FPA_CHECK(fs::exists(dir, ec), "image folder ", dir, ": does not exist");
  FPA_CHECK(fs::is_directory(dir, ec), "image folder ", dir, ": not a directory");
  std::vector<std::string> files;
  auto options = fs::directory_options::skip_permission_denied;
  fs::recursive_directory_iterator it(dir, options, ec), end;
  FPA_CHECK(!ec, "image folder ", dir, ": cannot list: ", ec.message());
  for (; it != end; it.increment(ec)) {
    FPA_CHECK(!ec, "image folder ", dir, ": cannot list: ", ec.message());
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && has_image_extension(it->path()))
      files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

ImageDataset load_image_folder(const std::string& dir, int size, bool greyscale, int64_t* skipped) {
  FPA_CHECK(size > 0, "image folder ", dir, ": image size ", size, " must be positive");
  const std::vector<std::string> files = list_image_files(dir);
  FPA_CHECK(!files.empty(), "image folder ", dir,
            ": no PNG or JPEG images found (looked for "
            "*.png, *.jpg, *.jpeg recursively)");
  const int channels = greyscale ? 1 : 3;
  const int64_t bytes = int64_t(channels) * size * size;
  const int64_t n = int64_t(files.size());

  std::vector<uint8_t> pixels(size_t(n * bytes));  // (n, C, S, S), a slot per file
  std::vector<std::string> errors(n);              // empty: loaded
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    try {
      Image img = read_image(files[i]);
      img = greyscale ? to_greyscale(img) : to_rgb(img);
      image_to_planar(resize_and_center_crop(img, size), &pixels[size_t(i * bytes)]);
    } catch (const std::exception& e) {
      std::string what = e.what(), prefix = files[i] + ": ";
      errors[i] = what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what;
      if (errors[i].empty()) errors[i] = "unreadable";
    }
  }

  ImageDataset d;
  d.channels = channels, d.size = size, d.source = dir;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      fmt::print(stderr, "warning: skipping image {}: {}\n", files[i], errors[i]);
      ++bad;
      continue;
    }
    if (d.count != i)  // compact in place, keeping path order
      std::memmove(&pixels[size_t(d.count * bytes)], &pixels[size_t(i * bytes)], size_t(bytes));
    ++d.count;
  }
  FPA_CHECK(d.count > 0, "image folder ", dir, ": none of its ", n,
            " image files could be loaded (see the warnings above)");
  pixels.resize(size_t(d.count * bytes));
  d.pixels = std::move(pixels);
  if (skipped) *skipped = bad;
  return d;
}

}  // namespace fpa
