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

constexpr const char* kPalette[] = {"#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                                    "#be185d", "#4d7c0f", "#a16207", "#4338ca", "#0f766e", "#b45309"};

const char* colour(std::size_t i) { return kPalette[i % std::size(kPalette)]; }

// Coordinates in the SVG are written with one decimal: enough for a screen, short in the file.
std::string px(double v) { return fmt::format("{:.1f}", v); }

// Rough width of SVG text at font-size 11 (for laying out legends and labels), erring wide:
// capitals, digits and wide signs take more than lower-case letters.
double text_width(std::string_view s) {
  double w = 0;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte: counted with its lead byte
    w += c == '@' || c == 'm' || c == 'w' || c == 'M' || c == 'W' ? 10.0
         : (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? 7.6
         : c == 'i' || c == 'l' || c == 'j' || c == '.' || c == ',' || c == '\'' || c == ' ' ? 3.8
                                                                                               : 6.6;
  }
  return w;
}

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

// One entry of a legend: a series (a short thick bar) or a reference (a dashed line).
struct LegendEntry {
  std::string label;
  std::string colour;
  bool dashed = false;
  bool bold = false;
};

// A legend under the plot: entries left to right, wrapping; returns the SVG and its height.
// Labels are never cut short: a long one gets a line of its own.
std::pair<std::string, double> legend(const std::vector<LegendEntry>& entries, double x0, double y0,
                                      double width) {
  std::string out;
  double x = x0, y = y0 + 12;
  for (const auto& e : entries) {
    const double w = 18 + text_width(e.label) + 12;
    if (x > x0 && x + w > x0 + width) x = x0, y += 15;
    const std::string mark =
        e.dashed ? fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" "
                               "stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>",
                               px(x), px(x + 12), px(y - 3), e.colour)
                 : fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"{}\" fill=\"{}\"/>", px(x),
                               px(y - (e.bold ? 5 : 4)), e.bold ? 5 : 4, e.colour);
    out += fmt::format("<g class=\"legend-entry{}\">{}<text x=\"{}\" y=\"{}\"{}>{}</text></g>",
                       e.dashed ? " reference" : "", mark, px(x + 16), px(y),
                       e.bold ? " font-weight=\"600\"" : "", escape(e.label));
    x += w;
  }
  return {out, entries.empty() ? 0.0 : y - y0 + 6};
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
      if (!c.title.empty()) attrs += fmt::format(" title=\"{}\"", escape(c.title));
      out += fmt::format("<td{}>{}</td>", attrs, escape(c.text));
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table></div>\n";
}

std::string palette_colour(std::size_t i) { return colour(i); }

std::vector<std::string> wrap_label(std::string_view label, std::size_t width) {
  width = std::max<std::size_t>(width, 4);
  std::vector<std::string> lines;
  std::string rest(label);
  while (rest.size() > width) {
    // The last break at or before `width`: after a ',' or ' ' where there is one, else after
    // a '='.
    std::size_t cut = std::string::npos, at_equals = std::string::npos;
    for (std::size_t i = 1; i <= width && i < rest.size(); ++i) {
      const char c = rest[i - 1];
      if (c == ',' || c == ' ') cut = i;
      if (c == '=') at_equals = i;
    }
    if (cut == std::string::npos) cut = at_equals;
    if (cut == std::string::npos) {
      cut = width;
      while (cut > 0 && (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
      if (cut == 0) cut = width;
    }
    std::string line = rest.substr(0, cut);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
    rest = rest.substr(cut);
    while (!rest.empty() && rest.front() == ' ') rest.erase(rest.begin());
  }
  if (!rest.empty() || lines.empty()) lines.push_back(rest);
  return lines;
}

namespace {

// The <text> of a wrapped label centred at x, its first line's baseline at y.
std::string wrapped_text(const std::vector<std::string>& lines, double x, double y, std::string_view full) {
  std::string out = fmt::format("<text class=\"tick x-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">"
                                "<title>{}</title>",
                                px(x), px(y), escape(full));
  for (std::size_t i = 0; i < lines.size(); ++i)
    out += fmt::format("<tspan x=\"{}\" dy=\"{}\">{}</tspan>", px(x), i == 0 ? "0" : "12", escape(lines[i]));
  return out + "</text>";
}

// The svg element's opening tag and its title.
std::string svg_open(const ChartOptions& o, double height, std::string_view extra = {}) {
  std::string out = fmt::format(
      "<svg class=\"chart {}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\"{}{}>"
      "<title>{}</title>",
      escape(o.kind), o.width, px(height), o.width, px(height), extra, data_attributes(o), escape(o.title));
  out += fmt::format("<text class=\"chart-title\" x=\"{}\" y=\"16\">{}</text>", 56, escape(shorten(o.title, 70)));
  return out;
}

// Horizontal grid lines with their tick labels.
template <typename Y>
std::string y_grid(const Axis& ya, const Frame& f, const Y& to_y) {
  std::string out;
  for (const double t : ya.ticks) {
    out += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", px(f.left),
                       px(f.left + f.plot_w), px(to_y(t)), px(to_y(t)));
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                       px(f.left - 4), px(to_y(t) + 4), escape(tick_label(t)));
  }
  return out;
}

// The two axis lines and the axis labels.
std::string axes(const ChartOptions& o, const Frame& f, double x_label_y) {
  const double base = f.top + f.plot_h;
  std::string out =
      fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\"/>", px(f.left),
                  px(f.left + f.plot_w), px(base));
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>", px(f.left),
                     px(f.top), px(base));
  if (!o.x_label.empty())
    out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       px(f.left + f.plot_w / 2), px(x_label_y), escape(o.x_label));
  if (!o.y_label.empty())
    out += fmt::format(
        "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(13,{}) "
        "rotate(-90)\">{}</text>",
        px(f.top + f.plot_h / 2), escape(shorten(o.y_label, 30)));
  return out;
}

// The reference lines across the plot, each with its value as a tooltip.
template <typename Y>
std::string reference_lines(const std::vector<Reference>& refs, const Frame& f, const Y& to_y) {
  std::string out;
  for (const auto& r : refs) {
    if (!std::isfinite(r.value)) continue;
    out += fmt::format(
        "<line class=\"reference\" data-label=\"{0}\" data-value=\"{1}\" x1=\"{2}\" x2=\"{3}\" y1=\"{4}\" "
        "y2=\"{4}\" stroke=\"{5}\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"><title>{0}: {6}</title></line>",
        escape(r.label), r.value, px(f.left), px(f.left + f.plot_w), px(to_y(r.value)), escape(r.colour),
        number(r.value, 4));
  }
  return out;
}

// The note under the title, if any.
std::string note_text(const std::string& note) {
  if (note.empty()) return {};
  return fmt::format("<text class=\"chart-note\" x=\"56\" y=\"29\">{}</text>", escape(note));
}

}  // namespace

std::string line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  Frame f;
  const bool categorical = !o.x_categories.empty();
  f.plot_w = o.width - f.left - f.right;
  // Categorical labels wrap to their slot; every line of every label is shown.
  std::vector<std::vector<std::string>> labels;
  std::size_t label_lines = 1;
  if (categorical) {
    const double slot = f.plot_w / static_cast<double>(o.x_categories.size());
    const auto chars = static_cast<std::size_t>(std::max(4.0, (slot - 4) / 6.3));
    for (const auto& c : o.x_categories) {
      labels.push_back(wrap_label(c, chars));
      label_lines = std::max(label_lines, labels.back().size());
    }
  }
  const double extra_label = 12.0 * static_cast<double>(label_lines - 1);

  // Ranges over finite values (and their error bars) and the references.
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
  for (const auto& r : o.references)
    if (std::isfinite(r.value) && drawn) ylo = std::min(ylo, r.value), yhi = std::max(yhi, r.value);
  // A narrow range is zoomed in (a y axis from 0 would flatten it) and says so.
  const double magnitude = std::max(std::abs(ylo), std::abs(yhi));
  const bool zoomed = drawn && !o.y_min && ylo > 0 && yhi > ylo && (yhi - ylo) < 0.25 * magnitude;
  if (o.y_min) ylo = std::min(drawn ? ylo : *o.y_min, *o.y_min);
  if (o.y_max) yhi = std::max(drawn ? yhi : *o.y_max, *o.y_max);

  std::vector<LegendEntry> entries;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    bool any = false;
    for (const auto& [x, y] : s.points) any = any || (std::isfinite(x) && std::isfinite(y));
    entries.push_back({any ? s.name : s.name + " (no values)", s.colour.empty() ? colour(i) : s.colour,
                       false, s.emphasis});
  }
  for (const auto& r : o.references)
    if (std::isfinite(r.value)) entries.push_back({r.label, r.colour, true, false});
  const bool with_legend = !o.references.empty() || series.size() > 1 ||
                           (series.size() == 1 && !series[0].name.empty());
  const auto [legend_svg, legend_h] =
      with_legend ? legend(entries, f.left, 0, f.plot_w) : std::pair<std::string, double>{};
  if (!o.note.empty() || zoomed) f.top += 12;
  f.plot_h = o.height - 26 - 40;
  const double base = f.top + f.plot_h;
  const double x_label_y = base + 30 + extra_label;
  const double height = x_label_y + (o.x_label.empty() ? -12 : 6) + legend_h + 4;

  Axis ya = drawn || o.y_min || o.y_max ? nice_axis(ylo, yhi) : nice_axis(0, 1);
  if (o.y_min && *o.y_min >= ya.lo) {
    // Exactly from the origin asked for, not the round number under it.
    std::erase_if(ya.ticks, [&](double t) { return t < *o.y_min - 1e-12; });
    ya.lo = *o.y_min;
  }
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

  ChartOptions tagged = o;
  if (zoomed) tagged.data["zoomed"] = "1";
  std::string out = svg_open(tagged, height);
  std::string note = o.note;
  if (zoomed)
    note = fmt::format("{}y axis zoomed: {} to {}, not from 0", note.empty() ? "" : note + "; ",
                       tick_label(ya.lo), tick_label(ya.hi));
  out += note.empty() ? std::string() : note_text(note);
  out += y_grid(ya, f, Y);
  for (std::size_t i = 0; i < xa.ticks.size(); ++i) {
    const double t = xa.ticks[i];
    out += fmt::format("<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>", px(X(t)),
                       px(base), px(base + 4));
    if (categorical)
      out += wrapped_text(labels[i], X(t), base + 15, o.x_categories[i]);
    else
      out += fmt::format("<text class=\"tick x-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                         px(X(t)), px(base + 15), escape(tick_label(t)));
  }
  out += axes(o, f, x_label_y);
  out += reference_lines(o.references, f, Y);

  // The series, the emphasised ones last (on top).
  std::vector<std::size_t> order(series.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(), [&](std::size_t i) { return !series[i].emphasis; });
  for (const std::size_t si : order) {
    const auto& s = series[si];
    const std::string c = s.colour.empty() ? colour(si) : s.colour;
    out += fmt::format("<g class=\"series{}\" data-series=\"{}\" data-points=\"{}\">",
                       s.emphasis ? " emphasis" : "", escape(s.name), s.points.size());
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
      out += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"/>", path, c,
                         s.emphasis ? "3.2" : "1.6");
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      const double e = i < s.errors.size() && std::isfinite(s.errors[i]) ? s.errors[i] : 0.0;
      const std::string at =
          categorical && x >= 0 && x < static_cast<double>(o.x_categories.size())
              ? o.x_categories[static_cast<std::size_t>(x)]
              : tick_label(x);
      const bool marked = std::find(s.marks.begin(), s.marks.end(), i) != s.marks.end();
      const std::string tip = fmt::format("{}: {} = {}{}{}", s.name, at, number(y, 4),
                                          e > 0 ? fmt::format(" ± {}", number(e, 4)) : "",
                                          marked ? " (kept)" : "");
      if (e > 0)
        out += fmt::format("<line class=\"errbar\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" "
                           "stroke=\"{3}\"/>",
                           px(X(x)), px(Y(y - e)), px(Y(y + e)), c);
      if (marked)
        out += fmt::format("<circle class=\"mark\" cx=\"{}\" cy=\"{}\" r=\"5.5\" fill=\"#fff\" stroke=\"{}\" "
                           "stroke-width=\"2.2\"><title>{}</title></circle>",
                           px(X(x)), px(Y(y)), c, escape(tip));
      else
        out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"><title>{}</title></circle>",
                           px(X(x)), px(Y(y)), s.points.size() > 60 ? "1.6" : s.line ? "2.2" : "2.8", c,
                           escape(tip));
    }
    out += "</g>";
  }
  if (drawn == 0)
    out += fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no values</text>",
                       px(f.left + f.plot_w / 2), px(f.top + f.plot_h / 2));
  if (legend_h > 0)
    out += fmt::format("<g class=\"legend\" transform=\"translate(0,{})\">{}</g>",
                       px(height - legend_h - 4), legend_svg);
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

std::string grouped_bar_chart(const std::vector<std::string>& groups, const std::vector<BarSeries>& series,
                              const ChartOptions& o) {
  Frame f;
  f.plot_w = o.width - f.left - f.right;
  const double slot = groups.empty() ? f.plot_w : f.plot_w / static_cast<double>(groups.size());
  const auto chars = static_cast<std::size_t>(std::max(4.0, (slot - 6) / 6.3));
  std::vector<std::vector<std::string>> labels;
  std::size_t label_lines = 1;
  for (const auto& g : groups) {
    labels.push_back(wrap_label(g, chars));
    label_lines = std::max(label_lines, labels.back().size());
  }
  double hi = 0;
  std::size_t drawn = 0;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      if (!std::isfinite(s.values[i])) continue;
      const double e = i < s.errors.size() && std::isfinite(s.errors[i]) ? s.errors[i] : 0.0;
      hi = std::max(hi, s.values[i] + e);
      ++drawn;
    }
  for (const auto& r : o.references)
    if (std::isfinite(r.value)) hi = std::max(hi, r.value);
  if (o.y_max) hi = std::max(hi, *o.y_max);
  std::vector<LegendEntry> entries;
  for (std::size_t i = 0; i < series.size(); ++i)
    entries.push_back({series[i].name, series[i].colour.empty() ? colour(i) : series[i].colour, false, false});
  for (const auto& r : o.references)
    if (std::isfinite(r.value)) entries.push_back({r.label, r.colour, true, false});
  const auto [legend_svg, legend_h] = legend(entries, f.left, 0, f.plot_w);
  if (!o.note.empty()) f.top += 12;
  f.plot_h = o.height - 26 - 40;
  const double base = f.top + f.plot_h;
  const double x_label_y = base + 30 + 12.0 * static_cast<double>(label_lines - 1);
  const double height = x_label_y + (o.x_label.empty() ? -12 : 6) + legend_h + 4;
  const Axis ya = nice_axis(0, hi > 0 ? hi : 1, true);
  const auto Y = [&](double y) { return f.top + (1.0 - (y - ya.lo) / (ya.hi - ya.lo)) * f.plot_h; };

  std::string out = svg_open(o, height, fmt::format(" data-groups=\"{}\" data-bars=\"{}\"", groups.size(), drawn));
  out += note_text(o.note);
  out += y_grid(ya, f, Y);
  const double inner = slot * 0.8;
  const double bar_w = series.empty() ? inner : inner / static_cast<double>(series.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double x0 = f.left + slot * static_cast<double>(g) + slot * 0.1;
    for (std::size_t si = 0; si < series.size(); ++si) {
      const auto& s = series[si];
      if (g >= s.values.size() || !std::isfinite(s.values[g])) continue;
      const double v = s.values[g];
      const double e = g < s.errors.size() && std::isfinite(s.errors[g]) ? s.errors[g] : 0.0;
      const std::string c = s.colour.empty() ? colour(si) : s.colour;
      const double x = x0 + bar_w * static_cast<double>(si);
      const double top = Y(std::max(0.0, v));
      out += fmt::format(
          "<rect class=\"bar\" data-group=\"{}\" data-series=\"{}\" data-value=\"{}\" x=\"{}\" y=\"{}\" "
          "width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} · {}: {}{}</title></rect>",
          escape(groups[g]), escape(s.name), v, px(x + 0.5), px(top), px(std::max(1.0, bar_w - 1)),
          px(std::max(0.0, base - top)), c, escape(groups[g]), escape(s.name), number(v, 4),
          e > 0 ? " ± " + number(e, 4) : std::string());
      if (e > 0)
        out += fmt::format("<line class=\"errbar\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#111827\"/>",
                           px(x + bar_w / 2), px(Y(std::max(0.0, v - e))), px(Y(v + e)));
    }
    out += wrapped_text(labels[g], f.left + slot * (static_cast<double>(g) + 0.5), base + 15, groups[g]);
  }
  if (drawn == 0)
    out += fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no values</text>",
                       px(f.left + f.plot_w / 2), px(f.top + f.plot_h / 2));
  out += axes(o, f, x_label_y);
  out += reference_lines(o.references, f, Y);
  out += fmt::format("<g class=\"legend\" transform=\"translate(0,{})\">{}</g>", px(height - legend_h - 4),
                     legend_svg);
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
table { border-collapse: collapse; margin: .4em 0 1em; font-size: 13px; max-width: 100%; }
th, td { border: 1px solid #d1d5db; padding: 3px 6px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: #f3f4f6; cursor: pointer; user-select: none; }
tr { background: #fff; }
table.sortable tr > :first-child { position: sticky; left: 0; background: inherit; z-index: 1; }
thead tr { background: #f3f4f6; }
th[aria-sort=ascending]::after { content: " \25B2"; }
th[aria-sort=descending]::after { content: " \25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: normal; }
tr.best { background: #ecfdf5; }
td.below-floor { color: #991b1b; font-weight: 600; }
.floor { color: #991b1b; }
td.error { color: #991b1b; white-space: pre-wrap; max-width: 60em; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #e5e7eb; border-radius: 6px; padding: 6px 8px; margin: 0 0 12px; }
.card.gate-run { width: 430px; }
.card.gate-run h3 { font-size: 13px; font-weight: 600; }
svg.chart { background: #fff; }
svg.chart text { font-size: 11px; fill: #374151; }
svg.chart text.chart-title { font-size: 12px; font-weight: 600; fill: #111827; }
svg.chart text.chart-note { font-size: 10.5px; fill: #92400e; }
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
  // What a reader would miss: texts outside their chart, axis labels on top of each other,
  // tables wider than the page.
  function box(e) { return e.getBoundingClientRect(); }
  var clipped = 0, overlaps = 0, overflowing = 0;
  Array.prototype.forEach.call(document.querySelectorAll('svg.chart'), function (svg) {
    var r = box(svg), own = 0, lapped = 0;
    Array.prototype.forEach.call(svg.querySelectorAll('text'), function (t) {
      var b = box(t);
      if (b.width === 0) return;
      if (b.left < r.left - 1 || b.right > r.right + 1 || b.top < r.top - 1 || b.bottom > r.bottom + 1) own += 1;
    });
    ['text.x-label', 'g.legend-entry'].forEach(function (selector) {
      var boxes = Array.prototype.map.call(svg.querySelectorAll(selector), box);
      for (var i = 1; i < boxes.length; i++)
        if (boxes[i].left < boxes[i - 1].right - 1 && boxes[i].top < boxes[i - 1].bottom - 1 &&
            boxes[i].bottom > boxes[i - 1].top + 1) lapped += 1;
    });
    svg.setAttribute('data-clipped', String(own));
    svg.setAttribute('data-overlaps', String(lapped));
    clipped += own;
    overlaps += lapped;
  });
  Array.prototype.forEach.call(document.querySelectorAll('div.wide'), function (d) {
    var wide = d.scrollWidth > d.clientWidth + 1;
    d.setAttribute('data-overflow', wide ? '1' : '0');
    if (wide) overflowing += 1;
  });
  document.documentElement.setAttribute('data-clipped', String(clipped));
  document.documentElement.setAttribute('data-overlaps', String(overlaps));
  document.documentElement.setAttribute('data-overflowing', String(overflowing));
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
