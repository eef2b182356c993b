// dataset_cache.h: the preprocessed uint8 cache of image-folder datasets, and load_dataset,
// the one entry point the trainer calls for its --data source.
//
// Decoding and resizing thousands of PNG/JPEG files takes seconds to minutes; the result
// (N, C, S, S) is saved once per (folder, size, greyscale) under the cache directory
// ($FPA_CACHE_DIR, else $XDG_CACHE_HOME/fpa, else ~/.cache/fpa) and reused while the folder's
// content is unchanged: the key hashes every file's relative path, size and bytes (reading the
// files is far cheaper than decoding them; sizes and times alone miss a file rewritten in place).
// Files are written atomically (autograd/atomic_file.h) and fully validated on read (magic, key, sizes, checksum): a bad or stale
// cache file is rebuilt, never trusted. The cache is an optimisation: when it cannot be
// written the dataset still loads, with a warning.
#pragma once
#include <string>

#include "data/image_io.h"

namespace fpa {

std::string default_cache_dir();

// Everything that identifies a folder's preprocessed form: the canonical folder path, size,
// greyscale and the content fingerprint, as text (it is stored in the cache file).
std::string image_folder_cache_key(const std::string& dir, int size, bool greyscale);
// The cache file for a folder, size and colour mode (its name does not depend on content, so
// a changed folder replaces its old cache file).
std::string image_folder_cache_path(const std::string& cache_dir, const std::string& dir, int size,
                                    bool greyscale);

// Writes `data` with `key` atomically. Throws naming the path on failure.
void write_dataset_cache(const std::string& path, const ImageDataset& data, const std::string& key);
// Reads a cache file written for `key`: false when missing or written for another key (stale);
// throws naming the path when it is corrupt (bad magic, sizes or checksum).
bool read_dataset_cache(const std::string& path, const std::string& key, ImageDataset* out);

// load_image_folder through the cache. `cache_dir` empty: default_cache_dir(). `cache_hit`,
// when given, says whether the data came from the cache.
ImageDataset load_image_folder_cached(const std::string& dir, int size, bool greyscale,
                                      const std::string& cache_dir = "", bool* cache_hit = nullptr);

// The trainer's data: "fashion-mnist" (train split, the default) or "fashion-mnist-test", or a
// directory of images (cached unless use_cache is false). Fashion-MNIST is padded to 32x32 and
// then resized to `size` when that differs; it is greyscale, so greyscale=false repeats the
// grey channel to RGB.
ImageDataset load_dataset(const std::string& source, int size, bool greyscale,
                          bool use_cache = true, const std::string& cache_dir = "",
                          bool* cache_hit = nullptr);

}  // namespace fpa
