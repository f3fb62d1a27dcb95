#include "report/data_explorer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "report/html.hpp"

namespace recrun::report {

namespace {

using html::Cell;

std::string pct(double share) { return fmt::format("{:.2f}%", 100.0 * share); }

Cell count_cell(std::int64_t n) {
  return Cell(std::to_string(n), static_cast<double>(n), "num");
}

Cell share_cell(double share) { return Cell(pct(share), share, "num"); }

std::string date(std::int64_t t, const char* format = "%Y-%m-%d") {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return std::to_string(t);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// A count histogram (bins 1, 2-4, 5-9, ...) as bars.
std::vector<html::Bar> histogram_bars(const data::Distribution& x) {
  std::vector<html::Bar> bars;
  for (std::size_t b = 0; b < x.histogram.size(); ++b) {
    const auto [lo, n] = x.histogram[b];
    const std::int64_t hi = b + 1 < x.histogram.size() ? x.histogram[b + 1].first - 1 : x.max;
    const std::string range = hi > lo ? fmt::format("{}-{}", lo, hi) : fmt::format("{}", lo);
    bars.push_back({.label = range, .value = static_cast<double>(n),
                    .tooltip = fmt::format("{}: {}", range, n)});
  }
  return bars;
}

// Items by the value of a numeric feature (a release year): bins of a round width (1, 2, 5, 10,
// 20, 50, ... units), at most 40 of them, from the smallest value present to the largest.
std::vector<html::Bar> numeric_bars(const NumericFeature& f) {
  double lo = INFINITY, hi = -INFINITY;
  for (std::size_t i = 0; i < f.values.size(); ++i)
    if ((f.present.empty() || f.present[i]) && std::isfinite(f.values[i]))
      lo = std::min(lo, static_cast<double>(f.values[i])), hi = std::max(hi, static_cast<double>(f.values[i]));
  if (!std::isfinite(lo)) return {};
  double width = 1;
  for (double scale = 1; (hi - lo) / width >= 40; scale *= 10)
    for (const double m : {1.0, 2.0, 5.0, 10.0})
      if ((hi - lo) / (m * scale) < 40) {
        width = m * scale;
        break;
      }
  const double start = std::floor(lo / width) * width;
  const auto bins = static_cast<std::size_t>(std::floor((hi - start) / width)) + 1;
  std::vector<std::int64_t> counts(bins, 0);
  for (std::size_t i = 0; i < f.values.size(); ++i)
    if ((f.present.empty() || f.present[i]) && std::isfinite(f.values[i]))
      ++counts[std::min(bins - 1, static_cast<std::size_t>(std::floor((f.values[i] - start) / width)))];
  const bool whole = std::floor(width) == width;
  std::vector<html::Bar> bars;
  for (std::size_t b = 0; b < bins; ++b) {
    const double from = start + width * static_cast<double>(b);
    const std::string range = width == 1 && whole ? html::tick_label(from)
                              : whole ? fmt::format("{}–{}", html::tick_label(from), html::tick_label(from + width - 1))
                                      : fmt::format("{}–{}", html::tick_label(from), html::tick_label(from + width));
    bars.push_back({.label = html::tick_label(from), .value = static_cast<double>(counts[b]),
                    .tooltip = fmt::format("{}: {} items", range, counts[b])});
  }
  return bars;
}

std::string distribution_table(std::string_view id, const data::Distribution& x) {
  const auto c = [](std::int64_t v) { return count_cell(v); };
  return html::table(id, {"min", "p10", "p25", "median", "p75", "p90", "max", "mean"},
                     {{c(x.min), c(x.p10), c(x.p25), c(x.median), c(x.p75), c(x.p90), c(x.max),
                       Cell(fmt::format("{:.1f}", x.mean), x.mean, "num")}});
}

}  // namespace

std::string render_data_explorer(const Dataset& d, const data::DataStats& s,
                                 const data::ExplorerStats& x, std::string_view source,
                                 std::string_view generated_at) {
  std::string b = fmt::format("<h1>Data set {}</h1>\n", html::escape(d.name));
  b += fmt::format("<p class=\"meta\">{} · read by '{}' · fingerprint {} · made {}</p>\n",
                   html::escape(d.source_dir.string()), html::escape(source),
                   html::escape(d.fingerprint), html::escape(generated_at));
  b += "<nav class=\"meta\"><a href=\"#lengths\">sequence lengths</a> · <a href=\"#popularity\">"
       "popularity</a> · <a href=\"#timeline\">over time</a> · <a href=\"#features\">metadata</a> · "
       "<a href=\"#cold\">cold users and items</a> · <a href=\"#loo\">leave-one-out</a></nav>\n";

  b += "<section id=\"summary\">\n<h2>Summary</h2>\n";
  b += html::table(
      "summary", {"users", "items", "interactions", "density", "first", "last", "tied pairs", "repeats"},
      {{count_cell(s.users), count_cell(s.items), count_cell(s.interactions), share_cell(s.density),
        Cell(s.interactions ? date(s.first_time) : "–"),
        Cell(s.interactions ? date(s.last_time) : "–"), share_cell(s.tie_share),
        share_cell(s.repeat_share)}});
  b += "<p class=\"note\">Tied pairs: consecutive interactions of a user with the same timestamp "
       "(their order comes from the file). Repeats: interactions with an item the user already "
       "had.</p>\n</section>\n";

  html::ChartOptions o;
  b += "<section id=\"lengths\">\n<h2>Sequence length (interactions per user)</h2>\n";
  b += distribution_table("lengths-table", s.user_lengths);
  o.title = "users by sequence length";
  o.x_label = "interactions per user";
  o.y_label = "users";
  o.kind = "histogram";
  o.data = {{"of", "sequence-length"}};
  o.width = 520;
  b += html::bar_chart(histogram_bars(s.user_lengths), o) + "\n</section>\n";

  b += "<section id=\"popularity\">\n<h2>Item popularity</h2>\n";
  b += html::table("popularity-table",
                   {"Gini", "top 1% of items hold", "top 10% hold", "long tail (all but the top 20%) holds"},
                   {{Cell(fmt::format("{:.3f}", s.item_gini), s.item_gini, "num"),
                     share_cell(s.top1_share), share_cell(s.top10_share), share_cell(x.long_tail_share)}});
  b += distribution_table("item-counts-table", s.item_counts);
  b += "<div class=\"charts\">\n";
  o = {};
  o.title = "items by number of interactions";
  o.x_label = "interactions per item";
  o.y_label = "items";
  o.kind = "histogram";
  o.data = {{"of", "item-popularity"}};
  o.width = 520;
  b += html::bar_chart(histogram_bars(s.item_counts), o) + "\n";
  o = {};
  o.title = fmt::format("Lorenz curve of popularity (Gini {:.3f})", s.item_gini);
  o.x_label = "share of items, least popular first";
  o.y_label = "share of interactions";
  o.kind = "lorenz";
  o.width = 360;
  o.height = 260;
  html::Series items, uniform;
  items.name = "items";
  items.points = x.lorenz;
  uniform.name = "uniform popularity";
  uniform.points = {{0, 0}, {1, 1}};
  b += html::line_chart({items, uniform}, o) +
       "\n</div>\n";
  std::vector<std::vector<Cell>> top;
  for (const auto& [id, title, n] : s.top_items) top.push_back({Cell(id), Cell(title), count_cell(n)});
  b += "<h3>Most popular items</h3>\n" + html::table("top-items", {"item", "title", "interactions"}, top);
  b += "</section>\n";

  b += "<section id=\"timeline\">\n<h2>Interactions over time</h2>\n";
  if (x.timeline.empty()) {
    b += "<p>No interactions.</p>\n";
  } else {
    std::vector<html::Bar> bars;
    const char* format = x.timeline_unit == "day" ? "%Y-%m-%d" : x.timeline_unit == "month" ? "%Y-%m" : "%Y";
    // Monthly and daily bars are labelled where a year (or month) starts; every bar has its
    // date and count as a tooltip.
    for (const auto& [t, n] : x.timeline) {
      const std::string when = date(t, format);
      std::string label = when;
      if (x.timeline_unit == "month") label = when.substr(5) == "01" || bars.empty() ? when.substr(0, 4) : "";
      if (x.timeline_unit == "day") label = when.substr(8) == "01" || bars.empty() ? when.substr(0, 7) : "";
      bars.push_back({.label = label, .value = static_cast<double>(n),
                      .tooltip = fmt::format("{}: {} interactions", when, n)});
    }
    o = {};
    o.title = fmt::format("interactions per {}", x.timeline_unit);
    o.y_label = "interactions";
    o.kind = "timeline";
    o.data = {{"unit", x.timeline_unit}};
    o.width = 900;
    o.height = 260;
    b += html::bar_chart(bars, o) + "\n";
  }
  b += "</section>\n";

  b += "<section id=\"features\">\n<h2>Metadata coverage</h2>\n";
  std::vector<std::vector<Cell>> rows;
  std::vector<html::Bar> coverage;
  for (const auto& f : s.features) {
    const double share = s.items ? static_cast<double>(f.items_covered) / static_cast<double>(s.items) : 0.0;
    std::string detail;
    if (f.kind == "categorical") detail = fmt::format("{} values, {:.2f} per covered item", f.size, f.values_per_item);
    else if (f.kind == "numeric") detail = fmt::format("range {} .. {}, mean {:.1f}", f.min, f.max, f.mean);
    else if (f.kind == "dense") detail = fmt::format("{} dimensions", f.size);
    rows.push_back({Cell(f.name), Cell(f.kind), count_cell(f.items_covered), share_cell(share), Cell(detail)});
    coverage.push_back({.label = f.name, .value = 100.0 * share,
                        .tooltip = fmt::format("{}: {} of {} items ({})", f.name, f.items_covered, s.items, pct(share))});
  }
  if (rows.empty()) {
    b += "<p>The data set has no item metadata.</p>\n";
  } else {
    b += html::table("coverage", {"feature", "kind", "items covered", "share of items", "values"}, rows);
    // What varies between the features is what they miss (coverage bars all sit near 100%).
    std::vector<html::Bar> missing;
    for (const auto& f : s.features)
      missing.push_back({.label = f.name, .value = static_cast<double>(s.items - f.items_covered),
                         .tooltip = fmt::format("{}: {} of {} items have no value", f.name,
                                                s.items - f.items_covered, s.items)});
    o = {};
    o.title = "items without a value, per feature";
    o.y_label = "items";
    o.kind = "coverage";
    o.data = {{"measure", "missing"}};
    o.width = std::max(300, 70 * static_cast<int>(missing.size()) + 80);
    b += html::bar_chart(missing, o) + "\n";
  }
  for (const auto& [name, feature] : d.numeric) {
    const auto bars = numeric_bars(feature);
    if (bars.empty()) continue;
    std::int64_t covered = 0;
    for (const auto& bar : bars) covered += static_cast<std::int64_t>(bar.value);
    o = {};
    o.title = fmt::format("items by {} ({} items with a value)", name, covered);
    o.x_label = name;
    o.y_label = "items";
    o.kind = "numeric-histogram";
    o.data = {{"feature", name}, {"items", std::to_string(covered)}};
    o.width = std::min(900, std::max(420, 20 * static_cast<int>(bars.size()) + 80));
    b += fmt::format("<h3>{}</h3>\n", html::escape(name)) + html::bar_chart(bars, o) + "\n";
  }
  for (const auto& [name, values] : x.values) {
    constexpr std::size_t kShown = 30;
    std::vector<html::Bar> bars;
    std::int64_t rest = 0;
    for (std::size_t k = 0; k < values.size(); ++k) {
      if (k < kShown) bars.push_back({.label = values[k].first, .value = static_cast<double>(values[k].second), .tooltip = {}});
      else rest += values[k].second;
    }
    if (values.size() > kShown)
      bars.push_back({.label = fmt::format("{} others", values.size() - kShown), .value = static_cast<double>(rest), .tooltip = {}});
    o = {};
    o.title = fmt::format("{}: items per value ({} values)", name, values.size());
    o.y_label = "items";
    o.kind = "values";
    o.data = {{"feature", name}};
    o.width = std::min(900, std::max(360, 28 * static_cast<int>(bars.size()) + 80));
    b += fmt::format("<h3>{}</h3>\n", html::escape(name)) + html::bar_chart(bars, o) + "\n";
  }
  b += "</section>\n";

  b += "<section id=\"cold\">\n<h2>Cold users and items</h2>\n";
  b += html::table("cold-table", {"what", "count", "share"},
                   {{Cell("users with fewer than 5 interactions"), count_cell(x.cold_users),
                     share_cell(s.users ? static_cast<double>(x.cold_users) / static_cast<double>(s.users) : 0.0)},
                    {Cell("items with fewer than 5 interactions"), count_cell(s.cold_items),
                     share_cell(s.items ? static_cast<double>(s.cold_items) / static_cast<double>(s.items) : 0.0)},
                    {Cell("items with no interaction"), count_cell(x.items_without_interactions),
                     share_cell(s.items ? static_cast<double>(x.items_without_interactions) / static_cast<double>(s.items) : 0.0)}});
  b += "</section>\n";

  b += "<section id=\"loo\">\n<h2>What leave-one-out drops</h2>\n";
  b += fmt::format("<p class=\"note\">The protocol's split with min_interactions = {}: users with "
                   "fewer interactions are dropped; each other user's last interaction is the test "
                   "target and the one before it the validation target.</p>\n",
                   x.loo_min_interactions);
  const auto of_all = [&](std::int64_t n) {
    return share_cell(s.interactions ? static_cast<double>(n) / static_cast<double>(s.interactions) : 0.0);
  };
  b += html::table(
      "loo-table", {"what", "count", "share"},
      {{Cell("users dropped"), count_cell(x.loo_dropped_users),
        share_cell(s.users ? static_cast<double>(x.loo_dropped_users) / static_cast<double>(s.users) : 0.0)},
       {Cell("interactions dropped with them"), count_cell(x.loo_dropped_interactions), of_all(x.loo_dropped_interactions)},
       {Cell("interactions held out (validation + test targets)"), count_cell(x.loo_held_out), of_all(x.loo_held_out)},
       {Cell("interactions left for training"), count_cell(x.loo_train_interactions), of_all(x.loo_train_interactions)},
       {Cell("items with interactions but none in training"), count_cell(x.loo_items_without_training),
        share_cell(s.items ? static_cast<double>(x.loo_items_without_training) / static_cast<double>(s.items) : 0.0)}});
  b += "</section>\n";
  return html::page(fmt::format("recrun data stats: {}", d.name), b);
}

}  // namespace recrun::report
