// fid_monitor.h: FID and KID during training (--fid-every, --fid-n): the EMA generator's images
// from fixed latents, against up to 10,000 images of the training data (their features cached,
// train/image_quality.h), through the FID Inception on the training device.
#pragma once

#include <memory>

#include "fpa/inception.h"
#include "fpa/models.h"
#include "train/image_quality.h"
#include "train/train_options.h"

namespace fpa {

class FidMonitor {
 public:
  // Loads the network (a missing weights file says to run make fid-weights) and the real
  // images' features; `real_cached` says whether those came from the cache.
  FidMonitor(const TrainOptions& o, const ImageDataset& data, bool* real_cached = nullptr);
  // FID and KID of o.fid_n images of `g`, from the same latents at every call.
  QualityScores measure(const GeneratorModel& g) const;
  int64_t real_count() const { return real_.stats.count; }

 private:
  const TrainOptions& o_;
  FidInception net_;
  FeatureSet real_;
};

}  // namespace fpa
