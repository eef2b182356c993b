// image_folder.h: a dataset from every PNG and JPEG under a directory (recursively), each
// resized (shorter side) and centre-cropped to S x S, as RGB or greyscale.
//
// Files are found by extension (.png, .jpg, .jpeg, any case) and taken in sorted path order,
// so the dataset is the same on every run and machine. A file that cannot be read or decoded
// is skipped with a warning on stderr naming it; only a folder from which nothing loads is an
// error (naming the folder).
#pragma once
#include <string>
#include <vector>

#include "data/image_io.h"

namespace fpa {

// The image files under `dir`, recursively, sorted. Errors name `dir` when it is missing or
// not a directory; an empty result is not an error here.
std::vector<std::string> list_image_files(const std::string& dir);

// (N, C, S, S) with C = 1 (greyscale) or 3; decoding runs on all OpenMP threads.
// `skipped`, when given, receives the number of files that failed to load.
ImageDataset load_image_folder(const std::string& dir, int size, bool greyscale,
                               int64_t* skipped = nullptr);

}  // namespace fpa
