#include "report/html.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "recrun/error.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::report::html {

namespace fs = std::filesystem;

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (overlong forms,
// surrogates and code points past U+10FFFF included).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned cp = 0;
  if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return n;
}

constexpr const char* kPalette[] = {"#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
                                    "#0891b2", "#be185d", "#4d7c0f", "#78716c", "#ca8a04"};

const char* colour(std::size_t i) { return kPalette[i % std::size(kPalette)]; }

// Coordinates in the SVG are written with one decimal: enough for a screen, short in the file.
std::string px(double v) { return fmt::format("{:.1f}", v); }

// Rough width of SVG text at font-size 11 (for laying out legends and labels).
double text_width(std::string_view s) { return 6.3 * static_cast<double>(s.size()); }

std::string shorten(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  std::size_t cut = n - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  return s.substr(0, cut) + "…";
}

// An axis: data range widened to round numbers, with ticks on them.
struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};

Axis nice_axis(double lo, double hi, bool from_zero = false) {
  Axis a;
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (from_zero) lo = std::min(lo, 0.0), hi = std::max(hi, 0.0);
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
    if (from_zero && lo < 0 && hi > 0) lo = 0;
  }
  const double raw = (hi - lo) / 4.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  if (!(a.hi > a.lo)) a.hi = a.lo + step;
  for (double t = a.lo; t <= a.hi + step * 1e-6 && a.ticks.size() < 50; t += step)
    a.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return a;
}

// A legend under the plot: entries left to right, wrapping; returns the SVG and its height.
std::pair<std::string, double> legend(const std::vector<std::string>& names, double x0, double y0,
                                      double width) {
  std::string out;
  double x = x0, y = y0 + 12;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string label = shorten(names[i], 40);
    const double w = 18 + text_width(label) + 12;
    if (x > x0 && x + w > x0 + width) x = x0, y += 15;
    out += fmt::format(
        "<g class=\"legend-entry\"><rect x=\"{}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text></g>",
        px(x), px(y - 4), colour(i), px(x + 16), px(y), escape(label));
    x += w;
  }
  return {out, names.empty() ? 0.0 : y - y0 + 6};
}

std::string data_attributes(const ChartOptions& o) {
  std::string out = fmt::format(" data-kind=\"{}\"", escape(o.kind));
  for (const auto& [k, v] : o.data) out += fmt::format(" data-{}=\"{}\"", escape(k), escape(v));
  return out;
}

struct Frame {
  double left = 56, right = 14, top = 26, bottom = 40;
  double plot_w = 0, plot_h = 0;
};

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    switch (c) {
      case '&': out += "&amp;"; ++i; continue;
      case '<': out += "&lt;"; ++i; continue;
      case '>': out += "&gt;"; ++i; continue;
      case '"': out += "&quot;"; ++i; continue;
      case '\'': out += "&#39;"; ++i; continue;
      default: break;
    }
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t' && c != '\r') || u == 0x7F) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string number(std::optional<double> value, int digits) {
  if (!value || std::isnan(*value)) return "–";
  if (std::isinf(*value)) return *value > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}f}", *value, digits);
}

std::string tick_label(double v) {
  if (!std::isfinite(v)) return v > 0 ? "inf" : v < 0 ? "-inf" : "nan";
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.3g}", v);
  std::string s = fmt::format("{:.4f}", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string table(std::string_view id, const std::vector<std::string>& headers,
                  const std::vector<std::vector<Cell>>& rows, std::string_view css_class) {
  std::string out = fmt::format(
      "<div class=\"wide\"><table id=\"{}\" class=\"sortable {}\">\n<thead><tr>", escape(id),
      escape(css_class));
  for (const auto& h : headers) out += fmt::format("<th title=\"click to sort\">{}</th>", escape(h));
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const auto& c : row) {
      std::string attrs;
      if (c.sort && std::isfinite(*c.sort)) attrs += fmt::format(" data-sort=\"{}\"", *c.sort);
      if (!c.css_class.empty()) attrs += fmt::format(" class=\"{}\"", escape(c.css_class));
      out += fmt::format("<td{}>{}</td>", attrs, escape(c.text));
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table></div>\n";
}

std::string line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  Frame f;
  const bool categorical = !o.x_categories.empty();
  bool rotate = false;
  if (categorical) {
    std::size_t longest = 0;
    for (const auto& c : o.x_categories) longest = std::max(longest, shorten(c, 22).size());
    const double slot = (o.width - f.left - f.right) / static_cast<double>(o.x_categories.size());
    rotate = text_width(std::string(longest, 'x')) > slot - 4;
    if (rotate) f.bottom = 30 + std::min(22.0, static_cast<double>(longest)) * 4.6;
  }
  f.plot_w = o.width - f.left - f.right;

  // Ranges over finite values (and their error bars).
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  std::size_t drawn = 0;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      const double e = i < s.errors.size() && std::isfinite(s.errors[i]) ? s.errors[i] : 0.0;
      xlo = std::min(xlo, x), xhi = std::max(xhi, x);
      ylo = std::min(ylo, y - e), yhi = std::max(yhi, y + e);
      ++drawn;
    }
  std::vector<std::string> names;
  for (const auto& s : series) {
    bool any = false;
    for (const auto& [x, y] : s.points) any = any || (std::isfinite(x) && std::isfinite(y));
    names.push_back(any ? s.name : s.name + " (no values)");
  }
  const auto [legend_svg, legend_h] =
      series.size() > 1 || (series.size() == 1 && !series[0].name.empty())
          ? legend(names, f.left, o.height - 4, f.plot_w)
          : std::pair<std::string, double>{};
  const double height = o.height + legend_h + (rotate ? f.bottom - 40 : 0);
  f.plot_h = o.height - f.top - 40;

  Axis ya = drawn ? nice_axis(ylo, yhi) : nice_axis(0, 1);
  Axis xa;
  if (categorical) {
    xa.lo = -0.5;
    xa.hi = static_cast<double>(o.x_categories.size()) - 0.5;
    for (std::size_t i = 0; i < o.x_categories.size(); ++i) xa.ticks.push_back(static_cast<double>(i));
  } else {
    xa = drawn ? nice_axis(xlo, xhi) : nice_axis(0, 1);
  }
  const auto X = [&](double x) { return f.left + (x - xa.lo) / (xa.hi - xa.lo) * f.plot_w; };
  const auto Y = [&](double y) { return f.top + (1.0 - (y - ya.lo) / (ya.hi - ya.lo)) * f.plot_h; };

  std::string out = fmt::format(
      "<svg class=\"chart {}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\"{}>"
      "<title>{}</title>",
      escape(o.kind), o.width, px(height), o.width, px(height), data_attributes(o), escape(o.title));
  out += fmt::format("<text class=\"chart-title\" x=\"{}\" y=\"16\">{}</text>", px(f.left),
                     escape(shorten(o.title, 60)));
  // Grid and ticks.
  for (const double t : ya.ticks) {
    out += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", px(f.left),
                       px(f.left + f.plot_w), px(Y(t)), px(Y(t)));
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                       px(f.left - 4), px(Y(t) + 4), escape(tick_label(t)));
  }
  const double base = f.top + f.plot_h;
  for (std::size_t i = 0; i < xa.ticks.size(); ++i) {
    const double t = xa.ticks[i];
    const std::string label = categorical ? shorten(o.x_categories[i], 22) : tick_label(t);
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>", px(X(t)),
                       px(base), px(base + 4));
    if (rotate)
      out += fmt::format(
          "<text class=\"tick\" text-anchor=\"end\" transform=\"translate({},{}) rotate(-40)\">"
          "<title>{}</title>{}</text>",
          px(X(t) + 3), px(base + 12), escape(o.x_categories[i]), escape(label));
    else
      out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                         px(X(t)), px(base + 15), escape(label));
  }
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\"/>", px(f.left),
                     px(f.left + f.plot_w), px(base));
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>", px(f.left),
                     px(f.top), px(base));
  if (!o.x_label.empty())
    out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       px(f.left + f.plot_w / 2), px(rotate ? height - legend_h - 4 : base + 30),
                       escape(o.x_label));
  if (!o.y_label.empty())
    out += fmt::format(
        "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(13,{}) "
        "rotate(-90)\">{}</text>",
        px(f.top + f.plot_h / 2), escape(shorten(o.y_label, 30)));

  // The series.
  for (std::size_t si = 0; si < series.size(); ++si) {
    const auto& s = series[si];
    out += fmt::format("<g class=\"series\" data-series=\"{}\" data-points=\"{}\">", escape(s.name),
                       s.points.size());
    // A gap (a non-finite point) starts a new sub-path.
    std::string path;
    bool pen = false;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        pen = false;
        continue;
      }
      path += fmt::format("{}{} {} ", pen ? "L" : "M", px(X(x)), px(Y(y)));
      pen = true;
    }
    if (s.line && !path.empty())
      out += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>", path,
                         colour(si));
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      const double e = i < s.errors.size() && std::isfinite(s.errors[i]) ? s.errors[i] : 0.0;
      const std::string at =
          categorical && x >= 0 && x < static_cast<double>(o.x_categories.size())
              ? o.x_categories[static_cast<std::size_t>(x)]
              : tick_label(x);
      const std::string tip = fmt::format("{}: {} = {}{}", s.name, at, number(y, 4),
                                          e > 0 ? fmt::format(" ± {}", number(e, 4)) : "");
      if (e > 0)
        out += fmt::format("<line class=\"errbar\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" "
                           "stroke=\"{3}\"/>",
                           px(X(x)), px(Y(y - e)), px(Y(y + e)), colour(si));
      out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"><title>{}</title></circle>",
                         px(X(x)), px(Y(y)), s.points.size() > 60 ? "1.6" : "2.8", colour(si),
                         escape(tip));
    }
    out += "</g>";
  }
  if (drawn == 0)
    out += fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no values</text>",
                       px(f.left + f.plot_w / 2), px(f.top + f.plot_h / 2));
  if (legend_h > 0) {
    // The legend sits under the x axis (and its rotated labels).
    const double shift = height - legend_h - (o.height - 4);
    out += fmt::format("<g class=\"legend\" transform=\"translate(0,{})\">{}</g>", px(shift),
                       legend_svg);
  }
  return out + "</svg>";
}

std::string bar_chart(const std::vector<Bar>& bars, const ChartOptions& o) {
  Frame f;
  std::size_t longest = 0;
  for (const auto& b : bars) longest = std::max(longest, shorten(b.label, 22).size());
  f.plot_w = o.width - f.left - f.right;
  const double slot = bars.empty() ? f.plot_w : f.plot_w / static_cast<double>(bars.size());
  const bool rotate = text_width(std::string(longest, 'x')) > slot - 2;
  if (rotate) f.bottom = 30 + std::min(22.0, static_cast<double>(longest)) * 4.6;
  const double height = o.height + (rotate ? f.bottom - 40 : 0);
  f.plot_h = o.height - f.top - 40;
  double hi = 0;
  for (const auto& b : bars)
    if (std::isfinite(b.value)) hi = std::max(hi, b.value);
  const Axis ya = nice_axis(0, hi > 0 ? hi : 1, true);
  const auto Y = [&](double y) { return f.top + (1.0 - (y - ya.lo) / (ya.hi - ya.lo)) * f.plot_h; };
  const double base = f.top + f.plot_h;

  std::string out = fmt::format(
      "<svg class=\"chart {}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
      "data-bars=\"{}\"{}><title>{}</title>",
      escape(o.kind), o.width, px(height), o.width, px(height), bars.size(), data_attributes(o),
      escape(o.title));
  out += fmt::format("<text class=\"chart-title\" x=\"{}\" y=\"16\">{}</text>", px(f.left),
                     escape(shorten(o.title, 60)));
  for (const double t : ya.ticks) {
    out += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", px(f.left),
                       px(f.left + f.plot_w), px(Y(t)), px(Y(t)));
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                       px(f.left - 4), px(Y(t) + 4), escape(tick_label(t)));
  }
  double last_label = -1e9;
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    const double v = std::isfinite(b.value) ? std::max(0.0, b.value) : 0.0;
    const double x = f.left + slot * static_cast<double>(i);
    const double w = std::max(1.0, slot * 0.8);
    const std::string tip = b.tooltip.empty() ? fmt::format("{}: {}", b.label, tick_label(b.value)) : b.tooltip;
    out += fmt::format(
        "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">"
        "<title>{}</title></rect>",
        px(x + slot * 0.1), px(Y(v)), px(w), px(base - Y(v)), colour(0), escape(tip));
    // Labels are drawn left to right, each far enough from the last one drawn not to overlap
    // it (rotated labels need about 20 px between them); an empty label is never drawn.
    const std::string label = shorten(b.label, 22);
    const double centre = x + slot / 2;
    const double gap = rotate ? 20.0 : text_width(label) + 6;
    if (label.empty() || centre - last_label < gap) continue;
    last_label = centre;
    if (rotate)
      out += fmt::format(
          "<text class=\"tick\" text-anchor=\"end\" transform=\"translate({},{}) rotate(-40)\">{}</text>",
          px(centre + 3), px(base + 12), escape(label));
    else
      out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                         px(centre), px(base + 15), escape(label));
  }
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\"/>", px(f.left),
                     px(f.left + f.plot_w), px(base));
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>", px(f.left),
                     px(f.top), px(base));
  if (!o.x_label.empty())
    out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       px(f.left + f.plot_w / 2), px(rotate ? height - 4 : base + 30),
                       escape(o.x_label));
  if (!o.y_label.empty())
    out += fmt::format(
        "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(13,{}) "
        "rotate(-90)\">{}</text>",
        px(f.top + f.plot_h / 2), escape(shorten(o.y_label, 30)));
  return out + "</svg>";
}

namespace {

constexpr std::string_view kStyle = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #1f2937; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.2em; margin: 1.6em 0 .5em; border-bottom: 1px solid #d1d5db; padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
.meta { color: #4b5563; margin: .1em 0; }
.wide { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: 13px; }
th, td { border: 1px solid #d1d5db; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \25B2"; }
th[aria-sort=descending]::after { content: " \25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best td { background: #ecfdf5; }
td.error { color: #991b1b; white-space: pre-wrap; max-width: 60em; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #e5e7eb; border-radius: 6px; padding: 6px 8px; margin: 0 0 12px; }
svg.chart { background: #fff; }
svg.chart text { font-size: 11px; fill: #374151; }
svg.chart text.chart-title { font-size: 12px; font-weight: 600; fill: #111827; }
svg.chart line.grid { stroke: #eef0f3; }
svg.chart line.axis { stroke: #6b7280; }
svg.chart line.errbar { stroke-width: 1.2; }
pre { background: #f9fafb; border: 1px solid #e5e7eb; padding: .6em; overflow-x: auto; font-size: 12px; }
#page-errors { color: #991b1b; border: 2px solid #991b1b; padding: .5em 2em; }
.note { color: #6b7280; font-size: 13px; }
)css";

// First in <head>: records script errors, failed loads and blocked fetches into the page, so
// that they show in a headless browser's DOM dump (and to a reader).
constexpr std::string_view kRecorder = R"js(
(function () {
  var count = 0;
  function note(text) {
    count += 1;
    document.documentElement.setAttribute('data-errors', String(count));
    function add() {
      var box = document.getElementById('page-errors');
      if (!box) return false;
      var item = document.createElement('li');
      item.textContent = text;
      box.appendChild(item);
      box.hidden = false;
      return true;
    }
    if (!add()) document.addEventListener('DOMContentLoaded', add);
  }
  window.addEventListener('error', function (e) {
    if (e.target && e.target !== window) {
      note('failed to load ' + (e.target.src || e.target.href || e.target.tagName));
    } else {
      note('script error: ' + e.message + ' at line ' + (e.lineno || 0));
    }
  }, true);
  window.addEventListener('unhandledrejection', function (e) { note('unhandled rejection: ' + e.reason); });
  document.addEventListener('securitypolicyviolation', function (e) {
    note('blocked fetch of ' + e.blockedURI + ' (' + e.violatedDirective + ')');
  });
})();
)js";

// Last in <body>: sortable tables (click a header; #sort=ID:COLUMN[:desc] on load), then the
// marks a test reads: data-ready and the number of resources the page fetched.
constexpr std::string_view kSorter = R"js(
(function () {
  function numeric(cell) {
    var v = cell ? cell.getAttribute('data-sort') : null;
    return v === null || v === '' ? null : parseFloat(v);
  }
  function sortTable(table, column, descending) {
    var body = table.tBodies[0];
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows);
    var numbers = rows.some(function (r) { return numeric(r.cells[column]) !== null; });
    rows.sort(function (a, b) {
      if (numbers) {
        var x = numeric(a.cells[column]), y = numeric(b.cells[column]);
        if (x === null || y === null) return (x === null) - (y === null);  // missing values last
        return descending ? y - x : x - y;
      }
      var s = (a.cells[column] ? a.cells[column].textContent : '');
      var t = (b.cells[column] ? b.cells[column].textContent : '');
      var r = s.localeCompare(t, undefined, { numeric: true });
      return descending ? -r : r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    for (var i = 0; i < heads.length; i++) {
      if (i === column) heads[i].setAttribute('aria-sort', descending ? 'descending' : 'ascending');
      else heads[i].removeAttribute('aria-sort');
    }
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.addEventListener('click', function () {
        sortTable(table, column, th.getAttribute('aria-sort') === 'ascending');
      });
    });
  });
  var m = /^#sort=([A-Za-z0-9_-]+):([0-9]+)(:desc)?$/.exec(window.location.hash);
  if (m) {
    var t = document.getElementById(m[1]);
    if (t) sortTable(t, parseInt(m[2], 10), !!m[3]);
  }
  document.documentElement.setAttribute('data-resources',
      String(performance.getEntriesByType('resource').length));
  document.documentElement.setAttribute('data-ready', '1');
})();
)js";

}  // namespace

std::string page(std::string_view title, std::string_view body) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\" data-errors=\"0\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "script-src 'unsafe-inline'; style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>{}</title>\n<script>{}</script>\n<style>{}</style>\n</head>\n<body>\n"
      "<ul id=\"page-errors\" hidden></ul>\n{}\n<script>{}</script>\n</body>\n</html>\n",
      escape(title), kRecorder, kStyle, body, kSorter);
}

std::string file_stem(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

void write_file_atomically(const fs::path& path, std::string_view content) {
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      throw Error(fmt::format("cannot create the directory '{}' for '{}': {}",
                              path.parent_path().string(), path.string(), ec.message()));
  }
  if (fs::is_directory(path, ec))
    throw Error(fmt::format("'{}' is a directory; name a file to write the page to", path.string()));
  util::write_atomically(path, content);
}

}  // namespace recrun::report::html
