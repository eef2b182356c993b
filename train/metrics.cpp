// metrics.cpp: the CSV log and its loss-curve SVG.
#include "train/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "autograd/atomic_file.h"
#include "autograd/error.h"

namespace fpa {

static const char* kHeader = "step,seconds,d_loss,g_loss,gp,aux_loss,images_per_second,fid,kid,kid_std";

// The optional fields after the seventh (fid, kid, kid_std): NaN where empty or absent.
static void parse_quality(const std::string& line, MetricsRow& r) {
  std::vector<std::string> fields(1);
  for (char c : line) {
    if (c == ',') fields.emplace_back();
    else fields.back().push_back(c);
  }
  double* quality[] = {&r.fid, &r.kid, &r.kid_std};
  for (size_t i = 0; i < 3 && 7 + i < fields.size(); ++i)
    if (!fields[7 + i].empty()) *quality[i] = std::strtod(fields[7 + i].c_str(), nullptr);
}

MetricsLog::MetricsLog(const std::string& dir, bool resume, int64_t keep_until_step) : dir_(dir) {
  std::string path = dir + "/metrics.csv";
  if (resume) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      MetricsRow r;
      long long step = 0;
      if (std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lf,%lf,%lf", &step, &r.seconds, &r.d_loss, &r.g_loss, &r.gp,
                      &r.aux_loss, &r.images_per_second) == 7 &&
          step <= keep_until_step) {
        r.step = step;
        parse_quality(line, r);
        rows_.push_back(r);
      }
    }
  }
  rewrite();
}

// One CSV line of a row.
static std::string csv_line(const MetricsRow& r) {
  auto optional = [](double v) { return std::isnan(v) ? std::string() : fmt::format("{:.6g}", v); };
  return fmt::format("{},{:.3f},{:.6g},{:.6g},{:.6g},{:.6g},{:.2f},{},{},{}\n", r.step, r.seconds, r.d_loss, r.g_loss,
                     r.gp, r.aux_loss, r.images_per_second, optional(r.fid), optional(r.kid), optional(r.kid_std));
}

void MetricsLog::rewrite() const {
  std::string text = std::string(kHeader) + "\n";
  for (const MetricsRow& r : rows_) text += csv_line(r);
  write_file_atomically(dir_ + "/metrics.csv", text);
}

void MetricsLog::append(const MetricsRow& r) {
  rows_.push_back(r);
  append_record(dir_ + "/metrics.csv", csv_line(r));
}

void MetricsLog::keep_until(int64_t step) {
  while (!rows_.empty() && rows_.back().step > step) rows_.pop_back();
  rewrite();
}

// Trailing moving average over up to `window` points (GAN losses are noisy).
static std::vector<double> smooth(const std::vector<double>& v, size_t window) {
  std::vector<double> out(v.size());
  double acc = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    acc += v[i];
    if (i >= window) acc -= v[i - window];
    out[i] = acc / double(std::min(i + 1, window));
  }
  return out;
}

void MetricsLog::write_curve() const {
  std::vector<double> steps, d, g, gp, aux;
  for (const MetricsRow& r : rows_) {
    steps.push_back(double(r.step)), d.push_back(r.d_loss), g.push_back(r.g_loss), aux.push_back(r.aux_loss);
    if (r.gp != 0) gp.push_back(r.gp);
  }
  std::vector<double> gp_steps;
  for (const MetricsRow& r : rows_)
    if (r.gp != 0) gp_steps.push_back(double(r.step));
  size_t w = std::max<size_t>(1, rows_.size() / 50);
  std::string svg = line_chart_svg({"D loss", "G loss", "GP", "aux loss"}, {steps, steps, gp_steps, steps},
                                   {smooth(d, w), smooth(g, w), smooth(gp, std::max<size_t>(1, w / 4)), smooth(aux, w)},
                                   "losses (moving average over " + std::to_string(w) + " steps)");
  write_file_atomically(dir_ + "/loss_curve.svg", svg);
  std::vector<double> fid_steps, fid, kid;
  for (const MetricsRow& r : rows_)
    if (!std::isnan(r.fid)) fid_steps.push_back(double(r.step)), fid.push_back(r.fid), kid.push_back(1000 * r.kid);
  if (!fid.empty())
    write_file_atomically(dir_ + "/fid_curve.svg", line_chart_svg({"FID", "KID x 1000"}, {fid_steps, fid_steps},
                                                                  {fid, kid}, "FID and KID of the EMA generator"));
}

double MetricsLog::best_fid() const {
  double best = NAN;
  for (const MetricsRow& r : rows_)
    if (!std::isnan(r.fid) && (std::isnan(best) || r.fid < best)) best = r.fid;
  return best;
}

std::string line_chart_svg(const std::vector<std::string>& names, const std::vector<std::vector<double>>& xs,
                           const std::vector<std::vector<double>>& ys, const std::string& title) {
  const double W = 800, H = 420, L = 60, R = 130, T = 40, B = 40;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (size_t s = 0; s < xs.size(); ++s)
    for (size_t i = 0; i < xs[s].size(); ++i) {
      if (!std::isfinite(ys[s][i])) continue;
      x0 = std::min(x0, xs[s][i]), x1 = std::max(x1, xs[s][i]);
      y0 = std::min(y0, ys[s][i]), y1 = std::max(y1, ys[s][i]);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1, y0 -= 1;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return T + (y1 - y) / (y1 - y0) * (H - T - B); };
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  fmt::memory_buffer svg;  // coordinates to 0.1 px
  auto out = std::back_inserter(svg);
  fmt::format_to(out,
                 "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' "
                 "font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n",
                 W, H);
  fmt::format_to(out, "<text x='{}' y='22' font-size='14'>{}</text>\n", L, title);
  fmt::format_to(out, "<rect x='{}' y='{}' width='{}' height='{}' fill='none' stroke='#888'/>\n", L, T, W - L - R,
                 H - T - B);
  for (int k = 0; k <= 4; ++k) {  // y ticks
    double y = y0 + (y1 - y0) * k / 4;
    fmt::format_to(out,
                   "<text x='{}' y='{:.1f}' text-anchor='end'>{:.3g}</text><line x1='{}' x2='{}' y1='{:.1f}' "
                   "y2='{:.1f}' stroke='#eee'/>\n",
                   L - 6, py(y) + 4, y, L, W - R, py(y), py(y));
  }
  for (int k = 0; k <= 4; ++k) {  // x ticks
    double x = x0 + (x1 - x0) * k / 4;
    fmt::format_to(out, "<text x='{:.1f}' y='{}' text-anchor='middle'>{}</text>\n", px(x), H - B + 16,
                   std::llround(x));
  }
  fmt::format_to(out, "<text x='{}' y='{}' text-anchor='middle'>step</text>\n", (W - R + L) / 2, H - 6);
  for (size_t s = 0; s < xs.size(); ++s) {
    const char* c = colours[s % 5];
    fmt::format_to(out, "<polyline fill='none' stroke='{}' stroke-width='1.5' points='", c);
    for (size_t i = 0; i < xs[s].size(); ++i)
      if (std::isfinite(ys[s][i])) fmt::format_to(out, "{:.1f},{:.1f} ", px(xs[s][i]), py(ys[s][i]));
    fmt::format_to(out, "'/>\n<text x='{}' y='{}' fill='{}'>{}</text>\n", W - R + 10, T + 16 + 18 * s, c, names[s]);
  }
  fmt::format_to(out, "</svg>\n");
  return fmt::to_string(svg);
}

}  // namespace fpa
