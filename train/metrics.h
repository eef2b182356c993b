// metrics.h: the run folder's metrics.csv (step, seconds, D loss, G loss, GP, aux loss,
// images/s, and FID, KID and KID's std at the steps that measure them, empty elsewhere),
// appended as training goes and reopened on resume, and the loss-curve and FID-curve pictures
// (SVGs, redrawn from the CSV) that sit beside it. Rewrites are atomic (autograd/atomic_file.h).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace fpa {

struct MetricsRow {
  int64_t step = 0;
  double seconds = 0, d_loss = 0, g_loss = 0, gp = 0, aux_loss = 0, images_per_second = 0;
  double fid = NAN, kid = NAN, kid_std = NAN;  // NaN: not measured at this step
};

class MetricsLog {
 public:
  // Opens DIR/metrics.csv; on resume keeps the rows up to `keep_until_step` (rows written after
  // the checkpoint being resumed are dropped, so the file matches the restored state).
  MetricsLog(const std::string& dir, bool resume, int64_t keep_until_step);
  void append(const MetricsRow& row);  // a whole line or nothing (append_record)
  // Drops the rows after `step` (a retry from an earlier checkpoint) and rewrites the file.
  void keep_until(int64_t step);
  const std::vector<MetricsRow>& rows() const { return rows_; }
  // Writes DIR/loss_curve.svg: D, G, GP and aux losses against the step (moving average), and
  // DIR/fid_curve.svg (FID, and KID x 1000) when a row has an FID.
  void write_curve() const;
  // The lowest FID of the rows, or NaN when none has one.
  double best_fid() const;

 private:
  void rewrite() const;
  std::string dir_;
  std::vector<MetricsRow> rows_;
};

// The SVG text of a multi-series line chart (exposed for tests).
std::string line_chart_svg(const std::vector<std::string>& names, const std::vector<std::vector<double>>& xs,
                           const std::vector<std::vector<double>>& ys, const std::string& title);

}  // namespace fpa
