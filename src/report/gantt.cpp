// Gantt chart as hand-written SVG: one compute row per device plus a thin send and receive row for its ports,
// a time axis with "nice" ticks, operator boxes coloured by type (stable palette), hover details in <title>.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include <fmt/format.h>

#include "render.h"

namespace moirai::report_detail {

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') out += ' ';
        else out += c;
    }
  }
  return out;
}

std::string type_colour(std::string_view type) {
  // Tableau-like colours for the types that dominate inference graphs.
  static constexpr std::pair<std::string_view, std::string_view> fixed[] = {
      {"Conv", "#4e79a7"},      {"ConvTranspose", "#4e79a7"}, {"MatMul", "#f28e2b"},  {"Gemm", "#e15759"},
      {"Relu", "#76b7b2"},      {"Gelu", "#76b7b2"},          {"Sigmoid", "#76b7b2"}, {"Add", "#59a14f"},
      {"Mul", "#8cd17d"},       {"MaxPool", "#edc948"},       {"AveragePool", "#edc948"},
      {"GlobalAveragePool", "#edc948"}, {"BatchNormalization", "#b07aa1"}, {"LayerNormalization", "#b07aa1"},
      {"Softmax", "#ff9da7"},   {"Reshape", "#9c755f"},       {"Transpose", "#9c755f"}, {"Concat", "#bab0ac"},
      {"Attention", "#d37295"}, {"Fused", "#a0cbe8"},
  };
  for (const auto& [name, colour] : fixed)
    if (name == type) return std::string(colour);
  uint32_t h = 2166136261u;  // FNV-1a: the same type gets the same colour in every run and every chart
  for (char c : type) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  const double hue = (h % 360) / 60.0, s = 0.50, l = 0.62;
  const double c = (1 - std::fabs(2 * l - 1)) * s, x = c * (1 - std::fabs(std::fmod(hue, 2.0) - 1)), m = l - c / 2;
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(hue)) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
  }
  auto byte = [&](double v) { return static_cast<int>(std::lround((v + m) * 255)); };
  return fmt::format("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b));
}

namespace {

constexpr double kWidth = 1200, kLeft = 140, kRight = 24, kTop = 62;
constexpr double kOpRow = 28, kPortRow = 11, kRowGap = 10;
constexpr double kCharW = 6.2;  // approximate width of one 10px sans-serif character

double nice_step(double span, int ticks) {
  const double raw = span / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (raw <= f * mag) return f * mag;
  return 10 * mag;
}

std::string fmt_ms(double v, double step) {
  const int decimals = step >= 1 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

std::string origin_text(const CostTable& t, OpId op) {
  const auto i = static_cast<size_t>(op);
  if (i >= t.op_origin.size() || t.op_origin[i].empty()) return {};
  std::string s = "\norigin:";
  const size_t shown = std::min<size_t>(t.op_origin[i].size(), 12);
  for (size_t k = 0; k < shown; ++k) s += " " + t.op_origin[i][k];
  if (t.op_origin[i].size() > shown) s += fmt::format(" ... ({} in all)", t.op_origin[i].size());
  return s;
}

constexpr size_t kLegendMax = 24;
constexpr int kLegendCols = 4;

// The chart's geometry, and its SVG drawn section by section: heading, time axis, device rows, operators,
// transfers, legend.
struct GanttChart {
  const Plan& plan;
  const CostTable& t;
  const Schedule& s;
  double span = 0, plot_w = 0, device_h = 0, axis_y = 0, legend_y = 0, height = 0;
  std::vector<std::pair<std::string, double>> legend;  // types present, by total time
  size_t legend_n = 0;
  std::string o;

  explicit GanttChart(const Plan& p) : plan(p), t(p.table), s(p.schedule) {
    span = s.makespan_ms;
    for (const auto& tr : s.transfers) span = std::max(span, tr.end_ms);
    for (const auto& ps : plan.parts)
      for (const auto& part : ps) span = std::max(span, part.end_ms);
    if (!(span > 0)) span = 1;
    plot_w = kWidth - kLeft - kRight;
    device_h = kOpRow + 2 * kPortRow + 4 + kRowGap;
    axis_y = kTop + t.num_devices() * device_h + 4;
    // Legend: types present, by total time, so the colours that matter come first.
    std::map<std::string, double> type_time;
    for (OpId op = 0; op < t.num_ops(); ++op)
      type_time[t.op_types[static_cast<size_t>(op)]] += s.ops[static_cast<size_t>(op)].end_ms - s.ops[static_cast<size_t>(op)].start_ms;
    legend.assign(type_time.begin(), type_time.end());
    std::stable_sort(legend.begin(), legend.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    legend_n = std::min(legend.size(), kLegendMax);
    legend_y = axis_y + 40;
    height = legend_y + std::ceil(legend_n / static_cast<double>(kLegendCols)) * 18 + 24;
  }

  double X(double ms) const { return kLeft + ms / span * plot_w; }
  double row_y(DeviceId d) const { return kTop + d * device_h; }

  void heading(bool standalone) {
    if (standalone) o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o += fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} {1:.0f}\" "
        "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"10\">\n",
        kWidth, height);
    o += fmt::format("<rect class=\"bg\" x=\"0\" y=\"0\" width=\"{:.0f}\" height=\"{:.0f}\" fill=\"#ffffff\"/>\n", kWidth, height);
    const std::string title = fmt::format("{} on {} · {} · makespan {}", t.name, t.cluster, plan.method, human_time(s.makespan_ms));
    o += fmt::format("<text x=\"{}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>\n", kLeft, xml_escape(title));
    std::string sub = fmt::format("status {} · placement time {} · {} operators, {} transfers · ports {}", plan.status_text(),
                                  human_time(plan.placement_time_s * 1000), t.num_ops(), s.transfers.size(),
                                  plan.sim.contention ? "contended" : "contention-free");
    if (auto g = plan.gap()) sub += fmt::format(" · gap {:.2f}%", *g * 100);
    o += fmt::format("<text x=\"{}\" y=\"42\" font-size=\"11\" fill=\"#555555\">{}</text>\n", kLeft, xml_escape(sub));
  }

  // Grid and axis.
  void axis() {
    const double step = nice_step(span, 10);
    o += "<g class=\"axis\" stroke=\"#dddddd\" stroke-width=\"1\">\n";
    for (double v = 0; v <= span * (1 + 1e-9); v += step)
      o += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.1f}\" x2=\"{0:.2f}\" y2=\"{2:.1f}\"/>\n", X(v), kTop - 4, axis_y);
    o += "</g>\n";
    o += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#333333\"/>\n", kLeft, axis_y, kLeft + plot_w);
    o += "<g class=\"ticks\" text-anchor=\"middle\" fill=\"#333333\">\n";
    for (double v = 0; v <= span * (1 + 1e-9); v += step) {
      o += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.1f}\" x2=\"{0:.2f}\" y2=\"{2:.1f}\" stroke=\"#333333\"/>", X(v), axis_y, axis_y + 4);
      o += fmt::format("<text x=\"{:.2f}\" y=\"{:.1f}\">{}</text>\n", X(v), axis_y + 15, fmt_ms(v, step));
    }
    o += "</g>\n";
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#333333\">time (ms)</text>\n",
                     kLeft + plot_w / 2, axis_y + 30);
  }

  // Row labels and backgrounds.
  void rows() {
    for (DeviceId d = 0; d < t.num_devices(); ++d) {
      const auto i = static_cast<size_t>(d);
      const double y = row_y(d);
      const bool over = i < s.peak_memory.size() && i < t.capacity.size() && s.peak_memory[i] > t.capacity[i];
      o += fmt::format("<rect class=\"row\" x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{}\" fill=\"#f4f4f4\"/>\n", kLeft,
                       y, plot_w, kOpRow);
      // Long names are cut to the margin; the full name is in the hover title.
      const std::string& dev = t.device_names[i];
      const size_t max_chars = static_cast<size_t>((kLeft - 14) / 7.5);
      const std::string shown = dev.size() <= max_chars ? dev : dev.substr(0, max_chars - 2) + "..";
      o += fmt::format("<g><title>{}</title><text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"12\" "
                       "font-weight=\"bold\"{}>{}</text></g>\n",
                       xml_escape(dev), kLeft - 8, y + (over ? 12 : kOpRow / 2 + 4), over ? " fill=\"#c0392b\"" : "",
                       xml_escape(shown));
      if (over)
        o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"8\" fill=\"#c0392b\">over "
                         "capacity</text>\n",
                         kLeft - 8, y + 23);
      o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"8\" fill=\"#777777\">send</text>\n",
                       kLeft - 8, y + kOpRow + 2 + kPortRow - 2);
      o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"8\" fill=\"#777777\">recv</text>\n",
                       kLeft - 8, y + kOpRow + 4 + 2 * kPortRow - 2);
    }
  }

  // One operator (or part) box with its hover text and, where it fits, its name.
  void box(OpId op, DeviceId d, double a, double b, const std::string& extra) {
    const auto i = static_cast<size_t>(op);
    const std::string& name = t.op_names[i];
    const std::string& type = t.op_types[i];
    const double x = X(a), w = std::max(0.6, X(b) - X(a)), y = row_y(d);
    std::string hover = fmt::format("{} ({}) on {}: {:.4f} - {:.4f} ms ({}){}{}", name, type,
                                    t.device_names[static_cast<size_t>(d)], a, b, human_time(b - a), extra,
                                    origin_text(t, op));
    // A white outline separates neighbours, but would wash out boxes only a pixel or two wide.
    o += fmt::format("<g><title>{}</title><rect class=\"op\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{}\" "
                     "fill=\"{}\"{}/>",
                     xml_escape(hover), x, y, w, kOpRow, type_colour(type),
                     w >= 3 ? " stroke=\"#ffffff\" stroke-width=\"0.5\"" : "");
    const size_t fit = static_cast<size_t>(std::max(0.0, (w - 4) / kCharW));
    // The whole name when it fits, a cut name only when enough of it shows to be recognisable.
    if (fit >= name.size() || fit >= 6) {
      std::string label = name.size() <= fit ? name : name.substr(0, fit - 2) + "..";
      o += fmt::format("<text x=\"{:.2f}\" y=\"{:.1f}\" fill=\"#1a1a1a\" pointer-events=\"none\">{}</text>",
                       x + 2, y + kOpRow / 2 + 3.5, xml_escape(label));
    }
    o += "</g>\n";
  }

  // Operators (or their parts when split).
  void ops() {
    o += "<g class=\"ops\">\n";
    for (OpId op = 0; op < t.num_ops(); ++op) {
      const auto i = static_cast<size_t>(op);
      if (i < plan.parts.size() && !plan.parts[i].empty()) {
        for (const auto& p : plan.parts[i])
          box(op, p.device, p.start_ms, p.end_ms, fmt::format(", part {:.1f}%", p.share * 100));
      } else {
        box(op, plan.result.placement.device[i], s.ops[i].start_ms, s.ops[i].end_ms, "");
      }
    }
    o += "</g>\n";
  }

  // Transfers: on the source's send row and the destination's receive row.
  void transfers() {
    o += "<g class=\"transfers\">\n";
    for (const auto& tr : s.transfers) {
      const std::string hover = fmt::format("{}: {} -> {}, {} ({:.0f} bytes), {:.4f} - {:.4f} ms ({})",
                                            t.data[static_cast<size_t>(tr.data)].name, t.device_names[static_cast<size_t>(tr.src)],
                                            t.device_names[static_cast<size_t>(tr.dst)], human_bytes(tr.bytes), tr.bytes,
                                            tr.start_ms, tr.end_ms, human_time(tr.end_ms - tr.start_ms));
      const double x = X(tr.start_ms), w = std::max(0.6, X(tr.end_ms) - X(tr.start_ms));
      o += fmt::format("<g><title>{}</title>", xml_escape(hover));
      o += fmt::format("<rect class=\"send\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{}\" fill=\"#e8a33d\" "
                       "fill-opacity=\"0.85\"/>",
                       x, row_y(tr.src) + kOpRow + 2, w, kPortRow);
      o += fmt::format("<rect class=\"recv\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{}\" fill=\"#5b8fd1\" "
                       "fill-opacity=\"0.85\"/></g>\n",
                       x, row_y(tr.dst) + kOpRow + 4 + kPortRow, w, kPortRow);
    }
    o += "</g>\n";
  }

  void legend_block() {
    o += "<g class=\"legend\">\n";
    const double col_w = (kWidth - kLeft - kRight) / kLegendCols;
    for (size_t k = 0; k < legend_n; ++k) {
      const double x = kLeft + static_cast<double>(k % kLegendCols) * col_w;
      const double y = legend_y + std::floor(k / static_cast<double>(kLegendCols)) * 18;
      o += fmt::format("<rect class=\"swatch\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>", x, y,
                       type_colour(legend[k].first));
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{} ({})</text>\n", x + 17, y + 10,
                       xml_escape(legend[k].first.empty() ? "(no type)" : legend[k].first), human_time(legend[k].second));
    }
    o += fmt::format("<text x=\"{}\" y=\"{:.1f}\" fill=\"#555555\">{}</text>\n", 8, legend_y + 10,
                     legend.size() > legend_n ? fmt::format("types (top {})", legend_n) : std::string("types"));
    o += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"12\" height=\"6\" fill=\"#e8a33d\"/><text x=\"{}\" y=\"{:.1f}\">send</text>",
                     8, legend_y + 22, 24, legend_y + 28);
    o += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"12\" height=\"6\" fill=\"#5b8fd1\"/><text x=\"{}\" y=\"{:.1f}\">recv</text>\n",
                     64, legend_y + 22, 80, legend_y + 28);
    o += "</g>\n</svg>\n";
  }
};

}  // namespace

std::string gantt(const Plan& plan, bool standalone) {
  GanttChart chart(plan);
  chart.heading(standalone);
  chart.axis();
  chart.rows();
  chart.ops();
  chart.transfers();
  chart.legend_block();
  return std::move(chart.o);
}

}  // namespace moirai::report_detail

namespace moirai {
std::string gantt_svg(const Plan& plan) { return report_detail::gantt(plan, true); }
}  // namespace moirai
