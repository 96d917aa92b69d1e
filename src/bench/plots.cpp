// Bench plots as hand-written SVG (no plotting library): grouped latency bars per cluster, the strip plot of
// the reference method's speed-ups, and placement time against graph size. Axes switch to a log scale when
// the values span a wide range; every mark has a <title> with its exact value for hovering.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "internal.h"

namespace moirai {
namespace {

const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"};
std::string colour(size_t i) { return kPalette[i % (sizeof kPalette / sizeof kPalette[0])]; }

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string title(const std::string& t) { return t.empty() ? "" : "<title>" + esc(t) + "</title>"; }

class Svg {
 public:
  Svg(double w, double h) : w_(w), h_(h) {}
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& tip = "") {
    body_ += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">{}</rect>\n",
                         x, y, w, std::max(0.0, h), fill, title(tip));
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& dash = "") {
    body_ += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
                         "stroke-width=\"{}\"{}/>\n",
                         x1, y1, x2, y2, stroke, width, dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"");
  }
  void circle(double cx, double cy, double r, const std::string& fill, const std::string& tip = "") {
    body_ += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\" fill-opacity=\"0.8\">{}</circle>\n",
                         cx, cy, r, fill, title(tip));
  }
  void text(double x, double y, const std::string& s, const std::string& anchor = "start", int size = 11,
            double rotate = 0, const std::string& extra = "") {
    const std::string rot = rotate != 0 ? fmt::format(" transform=\"rotate({} {:.1f} {:.1f})\"", rotate, x, y) : "";
    body_ += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" text-anchor=\"{}\"{}{}>{}</text>\n", x, y,
                         size, anchor, rot, extra, esc(s));
  }
  std::string str() const {
    return fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
                       "viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"sans-serif\">\n"
                       "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}</svg>\n",
                       w_, h_, w_, h_, body_);
  }

 private:
  double w_, h_;
  std::string body_;
};

std::string tick_label(double v) {
  if (v >= 1e6 || (v > 0 && v < 1e-3)) return fmt::format("1e{}", static_cast<int>(std::lround(std::log10(v))));
  return fmt::format("{:.10g}", v);
}

// A value axis mapped onto pixels [p0, p1] (p0 at the low end).
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double p0 = 0, p1 = 1;

  double map(double v) const {
    const double t = log ? (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                         : (v - lo) / (hi - lo);
    return p0 + std::clamp(t, 0.0, 1.0) * (p1 - p0);
  }
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      const int decades = static_cast<int>(std::lround(std::log10(hi / lo)));
      for (double d = lo; d <= hi * 1.0001; d *= 10)
        for (double m : decades <= 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1})
          if (d * m <= hi * 1.0001) t.push_back(d * m);
    } else {
      for (int i = 0; i <= 5; ++i) t.push_back(lo + (hi - lo) * i / 5);
    }
    return t;
  }
};

// Log when the positive values span more than `wide` (or `force_log`); otherwise linear from 0.
Axis make_axis(const std::vector<double>& values, double p0, double p1, double wide = 20, bool force_log = false) {
  Axis a;
  a.p0 = p0, a.p1 = p1;
  double mn = INFINITY, mx = 0;
  for (double v : values)
    if (v > 0) mn = std::min(mn, v), mx = std::max(mx, v);
  if (mx <= 0) return a;
  a.log = force_log || mx / mn > wide;
  if (a.log) {
    a.lo = std::pow(10, std::floor(std::log10(mn)));
    a.hi = std::pow(10, std::ceil(std::log10(mx)));
    if (a.hi <= a.lo) a.hi = a.lo * 10;
  } else {
    const double step = std::pow(10, std::floor(std::log10(mx)));
    a.lo = 0;
    a.hi = std::ceil(mx / step * 2) / 2 * step;  // a multiple of half a decade
    if (a.hi < mx) a.hi += step / 2;
  }
  return a;
}

// Horizontal grid lines with labels for a vertical axis at x, from x to x_end.
void y_axis(Svg& s, const Axis& a, double x, double x_end, const std::string& label) {
  for (double t : a.ticks()) {
    const double y = a.map(t);
    s.line(x, y, x_end, y, "#e5e5e5");
    s.text(x - 4, y + 4, tick_label(t), "end", 10);
  }
  s.line(x, a.p0, x, a.p1, "#444");
  s.text(14, (a.p0 + a.p1) / 2, label + (a.log ? " (log scale)" : ""), "middle", 11, -90);
}

// Legend entries as wide as the longest name, as many per row as fit in `width`.
struct Legend {
  double item_w = 0;
  size_t per_row = 1, rows = 0;
  Legend(const std::vector<std::string>& names, double width) {
    size_t longest = 0;
    for (const auto& n : names) longest = std::max(longest, n.size());
    item_w = 24 + 6.5 * static_cast<double>(longest);
    per_row = std::max<size_t>(1, static_cast<size_t>(width / item_w));
    rows = (names.size() + per_row - 1) / per_row;
  }
  double height() const { return 16 * static_cast<double>(rows); }
};

// The legend, from (x, y) (the baseline of its first row).
void legend(Svg& s, const std::vector<std::string>& names, double x, double y, const Legend& l) {
  const double item_w = l.item_w;
  const size_t per_row = l.per_row;
  for (size_t i = 0; i < names.size(); ++i) {
    const double lx = x + static_cast<double>(i % per_row) * item_w, ly = y + static_cast<double>(i / per_row) * 16;
    s.rect(lx, ly - 9, 10, 10, colour(i));
    s.text(lx + 14, ly, names[i], "start", 11);
  }
}

std::string empty_plot(const std::string& heading, const std::string& why) {
  Svg s(520, 120);
  s.text(260, 30, heading, "middle", 14, 0, " font-weight=\"bold\"");
  s.text(260, 70, why, "middle", 12);
  return s.str();
}

}  // namespace

std::string bench_latency_svg(const std::vector<BenchRow>& rows, const std::string& cluster) {
  const BenchGrid g(rows);
  const std::string heading = "Latency per model and method on " + cluster;
  if (!g.models.count(cluster)) return empty_plot(heading, "no rows");
  const auto& models = g.models.at(cluster);
  const auto& methods = g.methods;
  std::vector<double> values;
  for (const auto& m : models)
    for (const auto& meth : methods)
      if (const BenchRow* r = g.find(cluster, m, meth); r && r->has_latency()) values.push_back(*r->latency_ms);
  if (values.empty()) return empty_plot(heading, "no method found a plan that fits");
  const double bw = methods.size() > 8 ? 7 : 10, group = bw * static_cast<double>(methods.size()) + 14;
  const double plot_w = std::max(480.0, group * static_cast<double>(models.size()));
  const Legend l(methods, plot_w);
  const double left = 70, right = 20, top = 40 + l.height() + 14, bottom = 110;
  const double w = left + plot_w + right, h = top + 300 + bottom;
  Svg s(w, h);
  s.text(w / 2, 22, heading, "middle", 14, 0, " font-weight=\"bold\"");
  legend(s, methods, left, 44, l);
  const Axis a = make_axis(values, top + 300, top);
  y_axis(s, a, left, left + plot_w, "latency (ms)");
  const double step = plot_w / static_cast<double>(models.size());
  for (size_t i = 0; i < models.size(); ++i) {
    const double gx = left + step * static_cast<double>(i) + (step - group + 14) / 2;
    for (size_t k = 0; k < methods.size(); ++k) {
      const BenchRow* r = g.find(cluster, models[i], methods[k]);
      const double x = gx + bw * static_cast<double>(k);
      if (r && r->has_latency()) {
        const double y = a.map(*r->latency_ms);
        s.rect(x, y, bw - 1, a.p0 - y, colour(k),
               fmt::format("{} / {}: {} ms ({})", models[i], methods[k], format_ms(*r->latency_ms), r->status_text()));
      } else if (r) {  // no plan: a grey cross at the foot of where the bar would be
        s.text(x + bw / 2, a.p0 - 2, "×", "middle", 10, 0, " fill=\"#999\"");
        s.rect(x, a.p0 - 10, bw - 1, 10, "none", fmt::format("{} / {}: {}", models[i], methods[k], r->status_text()));
      }
    }
    s.text(left + step * (static_cast<double>(i) + 0.5), a.p0 + 12, models[i], "end", 11, -40);
  }
  s.line(left, a.p0, left + plot_w, a.p0, "#444");
  s.text(left, h - 8, "×: no plan (does not fit, failed or time limit)", "start", 10, 0, " fill=\"#666\"");
  return s.str();
}

std::string bench_speedup_svg(const std::vector<BenchRow>& rows, const std::string& reference) {
  const BenchGrid g(rows);
  const std::string heading = "Speed-up of " + reference + " over each method (one point per model and cluster)";
  const auto all = speedups(g, reference);
  if (all.empty()) return empty_plot(heading, "no pair of " + reference + " and another method both with a plan");
  std::vector<std::string> bases;
  for (const auto& m : g.methods)
    if (m != reference) bases.push_back(m);
  std::vector<double> values;
  for (const auto& sp : all) values.push_back(sp.value);
  values.push_back(1);
  const double step = 75, plot_w = std::max(480.0, step * static_cast<double>(bases.size()));
  const Legend l(g.clusters, plot_w);
  const double left = 70, right = 20, top = 40 + l.height() + 14, bottom = 110;
  const double w = left + plot_w + right, h = top + 320 + bottom;
  Svg s(w, h);
  s.text(w / 2, 22, heading, "middle", 14, 0, " font-weight=\"bold\"");
  legend(s, g.clusters, left, 44, l);
  Axis a = make_axis(values, top + 320, top, 1, true);
  y_axis(s, a, left, left + plot_w, "speed-up (×)");
  s.line(left, a.map(1), left + plot_w, a.map(1), "#444", 1, "4 3");
  const double col = plot_w / static_cast<double>(bases.size());
  for (size_t b = 0; b < bases.size(); ++b) {
    const double cx = left + col * (static_cast<double>(b) + 0.5);
    std::vector<double> xs;
    int n = 0;
    for (const auto& sp : all) {
      if (sp.baseline != bases[b]) continue;
      xs.push_back(sp.value);
      const size_t ci = static_cast<size_t>(std::find(g.clusters.begin(), g.clusters.end(), sp.cluster) - g.clusters.begin());
      const double jitter = static_cast<double>((n++ % 9) - 4) * 3.5;  // deterministic spread
      s.circle(cx + jitter, a.map(sp.value), 3.5, colour(ci),
               fmt::format("{} on {}: {:.3g}× over {}", sp.model, sp.cluster, sp.value, sp.baseline));
    }
    if (!xs.empty()) {
      const double gm = geometric_mean(xs);
      s.line(cx - 18, a.map(gm), cx + 18, a.map(gm), "#111", 2.5);
      s.text(cx, a.map(gm) - 5, fmt::format("{:.2f}×", gm), "middle", 9, 0, " font-weight=\"bold\"");
    }
    s.text(cx, a.p0 + 14, bases[b], "end", 11, -35);
  }
  s.line(left, a.p0, left + plot_w, a.p0, "#444");
  s.text(left, h - 8, "bar: geometric mean; dashed: no speed-up; above the line " + reference + " is faster", "start",
         10, 0, " fill=\"#666\"");
  return s.str();
}

std::string bench_time_svg(const std::vector<BenchRow>& rows) {
  const BenchGrid g(rows);
  const std::string heading = "Placement time vs graph size";
  std::vector<double> xs, ys;
  for (const auto& r : rows)
    if (r.nodes_after > 0 && r.placement_time_s > 0) xs.push_back(r.nodes_after), ys.push_back(r.placement_time_s);
  if (xs.empty()) return empty_plot(heading, "no timed rows");
  const double plot_w = 560, plot_h = 340;
  const Legend l(g.methods, plot_w);
  const double left = 70, right = 20, top = 40 + l.height() + 14, bottom = 50;
  const double w = left + plot_w + right, h = top + plot_h + bottom;
  Svg s(w, h);
  s.text(w / 2, 22, heading, "middle", 14, 0, " font-weight=\"bold\"");
  legend(s, g.methods, left, 44, l);
  const Axis ay = make_axis(ys, top + plot_h, top, 1, true);
  const Axis ax = make_axis(xs, left, left + plot_w, 1, true);
  y_axis(s, ay, left, left + plot_w, "placement time (s)");
  for (double t : ax.ticks()) {
    s.line(ax.map(t), top, ax.map(t), top + plot_h, "#eeeeee");
    s.text(ax.map(t), top + plot_h + 14, tick_label(t), "middle", 10);
  }
  s.line(left, top + plot_h, left + plot_w, top + plot_h, "#444");
  s.text(left + plot_w / 2, h - 12, "operators placed (after coarsening, log scale)", "middle", 11);
  for (const auto& r : rows) {
    if (r.nodes_after <= 0 || r.placement_time_s <= 0) continue;
    const size_t k = static_cast<size_t>(std::find(g.methods.begin(), g.methods.end(), r.method) - g.methods.begin());
    s.circle(ax.map(r.nodes_after), ay.map(r.placement_time_s), 3, colour(k),
             fmt::format("{} / {} / {}: {:.3g} s, {} nodes ({})", r.model, r.cluster, r.method, r.placement_time_s,
                         r.nodes_after, r.status_text()));
  }
  return s.str();
}

}  // namespace moirai
