// loader.h: DataLoader, shuffled float32 batches from an in-memory uint8 dataset.
//
// Every epoch visits the images in a fresh random order, a Fisher-Yates shuffle driven by
// Philox (autograd/philox.h) with counter (epoch, i): the order depends only on (seed,
// epoch), never on how many batches were drawn before or on threads. Each epoch yields
// floor(N / B) full batches (the incomplete tail is dropped, as the reference trainer does).
// A background thread converts the next batch while the caller trains on the current one.
// position() / set_position() give exact resume: a loader set to a saved position returns
// the very batch the original would have returned next.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "autograd/tensor.h"
#include "data/image_io.h"

namespace fpa {

struct LoaderPosition {
  int64_t epoch = 0;  // epochs completed
  int64_t index = 0;  // batches already returned in this epoch, 0 .. batches_per_epoch - 1
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && index == o.index; }
  bool operator!=(const LoaderPosition& o) const { return !(*this == o); }
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const ImageDataset> data, int64_t batch_size, uint64_t seed);
  DataLoader(ImageDataset data, int64_t batch_size, uint64_t seed);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The batch at position(), then advances: (B, C, S, S) float32 in [0, 1] on the CPU.
  // `indices`, when given, receives the dataset index of each image (B).
  Tensor next(std::vector<int64_t>* indices = nullptr);

  LoaderPosition position() const;      // of the batch next() returns
  void set_position(LoaderPosition p);  // throws when index is out of range
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t batch_size() const { return batch_size_; }
  uint64_t seed() const { return seed_; }
  const ImageDataset& dataset() const { return *data_; }

  // The permutation of 0 .. N-1 used in `epoch`, and the images of the batch at `p`.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  std::vector<int64_t> batch_indices(LoaderPosition p) const;

 private:
  void worker_loop();
  Tensor make_batch(const std::vector<int64_t>& indices) const;

  std::shared_ptr<const ImageDataset> data_;
  int64_t batch_size_ = 0, batches_per_epoch_ = 0;
  uint64_t seed_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  LoaderPosition position_;  // guarded by mu_
  uint64_t generation_ = 0;  // bumped by set_position: work started before it is dropped
  bool ready_ = false;       // batch_ holds the batch at position_
  bool stop_ = false;
  Tensor batch_;
  std::vector<int64_t> batch_ids_;
  std::exception_ptr error_;
  std::thread worker_;  // last: starts after everything above exists
};

}  // namespace fpa
