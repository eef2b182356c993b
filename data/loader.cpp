// loader.cpp: the Philox shuffle and the one-batch-ahead worker thread.
//
// The worker waits until the slot is empty (ready_ false), builds the batch at position_
// without holding the lock, and fills the slot unless set_position changed the generation
// meanwhile. next() waits for the slot, empties it and advances, which wakes the worker.
#include "data/loader.h"

#include <numeric>

#include "autograd/error.h"
#include "autograd/philox.h"

namespace fpa {

namespace {

constexpr uint64_t kShuffleStream = 0x53485546464c4521ull;  // keeps the loader's stream apart

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const ImageDataset> data, int64_t batch_size, uint64_t seed)
    : data_(std::move(data)), batch_size_(batch_size), seed_(seed) {
  FPA_CHECK(data_ && data_->count > 0, "DataLoader: empty dataset");
  const ImageDataset& d = *data_;
  FPA_CHECK(int64_t(d.pixels.size()) == d.count * d.image_bytes(), "DataLoader: dataset ", d.source,
            " has ", d.pixels.size(), " bytes for ", d.count, " images of ", d.channels, "x",
            d.size, "x", d.size);
  FPA_CHECK(d.count < (int64_t(1) << 32), "DataLoader: ", d.count, " images (at most 2^32)");
  FPA_CHECK(batch_size > 0 && batch_size <= d.count, "DataLoader: batch size ", batch_size,
            " must be in 1 .. ", d.count, " (the images in ", d.source, ")");
  batches_per_epoch_ = d.count / batch_size;
  worker_ = std::thread(&DataLoader::worker_loop, this);
}

DataLoader::DataLoader(ImageDataset data, int64_t batch_size, uint64_t seed)
    : DataLoader(std::make_shared<const ImageDataset>(std::move(data)), batch_size, seed) {}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  FPA_CHECK(epoch >= 0 && epoch < (int64_t(1) << 32), "DataLoader: epoch ", epoch, " out of range");
  std::vector<int64_t> order(data_->count);
  std::iota(order.begin(), order.end(), 0);
  const uint64_t key = seed_ ^ kShuffleStream;
  for (int64_t i = data_->count - 1; i > 0; --i) {  // Fisher-Yates, j uniform in 0 .. i
    Philox4 r = philox4x32(uint64_t(epoch) << 32 | uint64_t(i), key);
    uint64_t u = uint64_t(r.v[0]) << 32 | r.v[1];
    std::swap(order[i], order[int64_t(u % uint64_t(i + 1))]);
  }
  return order;
}

std::vector<int64_t> DataLoader::batch_indices(LoaderPosition p) const {
  FPA_CHECK(p.index >= 0 && p.index < batches_per_epoch_, "DataLoader: batch index ", p.index,
            " out of range 0 .. ", batches_per_epoch_ - 1);
  std::vector<int64_t> order = epoch_order(p.epoch);
  return std::vector<int64_t>(order.begin() + p.index * batch_size_,
                              order.begin() + (p.index + 1) * batch_size_);
}

Tensor DataLoader::make_batch(const std::vector<int64_t>& indices) const {
  const ImageDataset& d = *data_;
  const int64_t per = d.image_bytes();
  float scaled[256];  // v / 255, correctly rounded like torchvision's ToTensor
  for (int v = 0; v < 256; ++v) scaled[v] = float(v) / 255.0f;
  Tensor t = empty(Shape{batch_size_, d.channels, d.size, d.size});  // (B, C, S, S)
  float* out = t.data_as<float>();
  for (int64_t b = 0; b < batch_size_; ++b) {
    const uint8_t* src = d.image(indices[b]);
    for (int64_t k = 0; k < per; ++k) out[b * per + k] = scaled[src[k]];
  }
  return t;
}

void DataLoader::worker_loop() {
  int64_t cached_epoch = -1;  // the worker's copy of the current epoch's order
  std::vector<int64_t> order;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || (!ready_ && !error_); });
    if (stop_) return;
    const LoaderPosition pos = position_;
    const uint64_t gen = generation_;
    lock.unlock();
    Tensor batch;
    std::vector<int64_t> ids;
    std::exception_ptr error;
    try {
      if (pos.epoch != cached_epoch) order = epoch_order(pos.epoch), cached_epoch = pos.epoch;
      ids.assign(order.begin() + pos.index * batch_size_,
                 order.begin() + (pos.index + 1) * batch_size_);
      batch = make_batch(ids);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (gen != generation_) continue;  // set_position moved on: build the new one
    batch_ = std::move(batch), batch_ids_ = std::move(ids), error_ = error;
    ready_ = !error;
    cv_.notify_all();
  }
}

Tensor DataLoader::next(std::vector<int64_t>* indices) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ready_ || error_; });
  if (error_) std::rethrow_exception(error_);
  Tensor batch = std::move(batch_);
  if (indices) *indices = std::move(batch_ids_);
  batch_ = Tensor(), batch_ids_.clear();
  ready_ = false;
  if (++position_.index == batches_per_epoch_) position_.index = 0, ++position_.epoch;
  lock.unlock();
  cv_.notify_all();
  return batch;
}

LoaderPosition DataLoader::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return position_;
}

void DataLoader::set_position(LoaderPosition p) {
  FPA_CHECK(
      p.epoch >= 0 && p.epoch < (int64_t(1) << 32) && p.index >= 0 && p.index < batches_per_epoch_,
      "DataLoader: position (epoch ", p.epoch, ", batch ", p.index, ") out of range (",
      batches_per_epoch_, " batches per epoch)");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (p == position_ && !error_) return;  // already there (or being built)
    position_ = p;
    ++generation_;
    ready_ = false, error_ = nullptr;
    batch_ = Tensor(), batch_ids_.clear();
  }
  cv_.notify_all();
}

}  // namespace fpa
