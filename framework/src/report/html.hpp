// Building self-contained HTML pages: escaping, tables, and charts drawn as inline SVG in C++.
// A page made here references nothing outside itself (no scripts, styles, fonts or images from
// any URL): its Content-Security-Policy forbids every fetch, and its own small script sorts
// tables and records script errors and blocked fetches into the page (so a headless browser's
// DOM dump shows them). `recrun report` and `recrun data stats --html` use it (docs/report.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recrun::report::html {

/// Text made safe for HTML element content and quoted attribute values: & < > " ' become
/// entities, bytes that are not valid UTF-8 and control characters other than tab, newline and
/// carriage return become U+FFFD.
std::string escape(std::string_view text);

/// A number as a table shows it: `digits` decimals, "–" for NaN or none; infinities as ±inf.
std::string number(std::optional<double> value, int digits = 4);

/// A short axis label for a value: 0.25, 1.5e-05, 12000.
std::string tick_label(double value);

/// One table cell: escaped text, an optional numeric sort key, optional CSS class.
struct Cell {
  Cell() = default;
  Cell(std::string text) : text(std::move(text)) {}  // NOLINT: implicit, cells are mostly text
  Cell(const char* text) : text(text) {}              // NOLINT
  Cell(std::string text, std::optional<double> sort, std::string css_class = {})
      : text(std::move(text)), sort(sort), css_class(std::move(css_class)) {}
  std::string text;
  std::optional<double> sort;
  std::string css_class;
  /// Tooltip (the cell's title attribute), e.g. the full key behind a shortened one.
  std::string title;
};

/// A table whose columns sort when their header is clicked (by `sort` where given, otherwise by
/// text). `id` names it (for #sort=ID:COLUMN[:desc] in the page's address, see page()). Its
/// cells wrap and its first column stays in view (sticky), so a page never needs a sideways
/// scroll to read a row.
std::string table(std::string_view id, const std::vector<std::string>& headers,
                  const std::vector<std::vector<Cell>>& rows, std::string_view css_class = {});

/// One line of a line chart.
struct Series {
  std::string name;
  /// (x, y) points; non-finite y values are left out of the drawing.
  std::vector<std::pair<double, double>> points;
  /// Error bars (± this), aligned with points; empty for none.
  std::vector<double> errors;
  /// Join the points with a line (false: points only).
  bool line = true;
  /// CSS colour; empty: the palette's, by the series' position. Give one colour per source
  /// across charts by passing the same colour for the same name.
  std::string colour;
  /// Drawn thicker and on top, its legend entry in bold (the best run of a group).
  bool emphasis = false;
  /// Indices into points drawn as a ring (the epoch a run kept).
  std::vector<std::size_t> marks;
};

/// A horizontal reference line across a chart (a baseline group's value): dashed, labelled in
/// the legend, and inside the y axis's range.
struct Reference {
  std::string label;
  double value = 0;
  std::string colour = "#374151";
};

/// How a chart is labelled and tagged.
struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  /// When set, x values are indices into these labels (a categorical axis).
  std::vector<std::string> x_categories;
  /// Drawn as the svg's class ("chart <kind>") and data-kind, for tests and styling.
  std::string kind = "chart";
  /// More data-* attributes on the svg (names without the "data-" prefix).
  std::map<std::string, std::string> data;
  /// Reference lines (see Reference).
  std::vector<Reference> references;
  /// The y axis covers at least [y_min, y_max] where set (e.g. 0 and 1 for shares). Without
  /// y_min, a line chart whose values span a narrow range (under a quarter of their magnitude)
  /// is zoomed in, and says so in the chart ("y axis zoomed: ...", data-zoomed="1").
  std::optional<double> y_min, y_max;
  /// A line of small text under the title.
  std::string note;
  int width = 380;
  int height = 230;
};

/// A line chart with axes, ticks, a legend and a tooltip (<title>) on every point. Series with
/// no finite point are listed in the legend as "(no values)". Never throws on odd data (empty,
/// constant, infinite): it draws what can be drawn.
std::string line_chart(const std::vector<Series>& series, const ChartOptions& options);

/// One bar of a bar chart.
struct Bar {
  std::string label;
  double value = 0;
  /// Tooltip; the label and value when empty.
  std::string tooltip;
};

/// A vertical bar chart, one bar per entry, labels under the bars (rotated when long).
std::string bar_chart(const std::vector<Bar>& bars, const ChartOptions& options);

/// One series of a grouped bar chart: a value (NaN: none) and an error (± this; 0 or NaN for
/// none) per group.
struct BarSeries {
  std::string name;
  std::vector<double> values;
  std::vector<double> errors;
  /// CSS colour; empty: the palette's, by position.
  std::string colour;
};

/// Grouped bars for categorical values: one cluster per entry of `groups` (labelled under the
/// axis, wrapped onto several lines, never cut short), one bar per series in each cluster, a
/// y axis from 0, the references as dashed lines, and a legend. Each bar's tooltip names its
/// group, series and value; each bar carries data-group, data-series and data-value.
std::string grouped_bar_chart(const std::vector<std::string>& groups, const std::vector<BarSeries>& series,
                              const ChartOptions& options);

/// The palette's i-th colour (it repeats after 12).
std::string palette_colour(std::size_t i);

/// A label broken into lines of at most `width` characters: after a ',' or ' ' where it can,
/// else after a '=', inside a word where it must; nothing is left out (spaces at a break go).
std::vector<std::string> wrap_label(std::string_view label, std::size_t width);

/// A whole page: title, inline style, the error-recording script first in <head>, `body`, and
/// the table-sorting script last. The address's fragment #sort=ID:COLUMN[:desc] sorts a table
/// on load (COLUMN counts from 0), so a headless browser can check the sorting. After layout
/// the script also records what a reader would miss: on each chart, data-clipped (texts that
/// reach outside the chart) and data-overlaps (axis labels or legend entries that overlap their
/// neighbour); on
/// each table's box, data-overflow="1" when it is wider than the page; and their totals on
/// <html> (data-clipped, data-overlaps, data-overflowing).
std::string page(std::string_view title, std::string_view body);

/// A name as a file name stem: anything but ASCII letters, digits, '.', '_' and '-' becomes '_',
/// and a leading '.' (or an empty name) gets a '_' in front.
std::string file_stem(std::string_view name);

/// Writes `content` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a page and a failure leaves the old file as it was. Creates the parent
/// directory. Throws recrun::Error naming the file.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace recrun::report::html
