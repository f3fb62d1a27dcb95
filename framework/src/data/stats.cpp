#include "data/stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <numeric>

#include "core/split.hpp"

namespace recrun::data {

namespace {

Distribution distribution(std::vector<std::int64_t> v) {
  Distribution d;
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
  };
  d.min = v.front();
  d.p10 = at(0.10);
  d.p25 = at(0.25);
  d.median = at(0.50);
  d.p75 = at(0.75);
  d.p90 = at(0.90);
  d.max = v.back();
  d.mean = static_cast<double>(std::accumulate(v.begin(), v.end(), std::int64_t{0})) /
           static_cast<double>(v.size());
  // Bins 1, 2-4, 5-9, 10-19, 20-49, 50-99, ... (1-2-5 steps read well on a log scale).
  std::vector<std::int64_t> bounds = {0, 1, 2, 5};
  while (bounds.back() <= d.max) {
    const std::int64_t b = bounds.back();
    const std::int64_t lead = b / static_cast<std::int64_t>(std::pow(10, std::floor(std::log10(b))));
    bounds.push_back(lead == 1 ? b * 2 : lead == 2 ? b * 5 / 2 : b * 2);
  }
  std::size_t k = 0;
  for (std::size_t b = 0; b + 1 < bounds.size(); ++b) {
    std::int64_t n = 0;
    while (k < v.size() && v[k] < bounds[b + 1]) ++n, ++k;
    if (n > 0 || (bounds[b] >= d.min && bounds[b] <= d.max)) d.histogram.emplace_back(bounds[b], n);
  }
  return d;
}

std::string date(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return fmt::format("{}", t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

}  // namespace

DataStats compute_stats(const Dataset& d, std::int64_t top) {
  DataStats s;
  s.users = d.num_users();
  s.items = d.num_items();
  s.interactions = d.num_interactions();

  std::vector<std::int64_t> lengths(s.users);
  std::vector<std::int64_t> counts(s.items, 0);
  std::int64_t ties = 0, pairs = 0, repeats = 0;
  std::vector<std::int64_t> last_user(s.items, -1);
  s.first_time = s.interactions ? d.timestamps.front() : 0;
  s.last_time = s.first_time;
  for (std::int64_t u = 0; u < s.users; ++u) {
    const auto items = d.user_items(u);
    const auto times = d.user_times(u);
    lengths[u] = static_cast<std::int64_t>(items.size());
    for (std::size_t k = 0; k < items.size(); ++k) {
      ++counts[items[k]];
      if (last_user[items[k]] == u) ++repeats;
      last_user[items[k]] = u;
      s.first_time = std::min(s.first_time, times[k]);
      s.last_time = std::max(s.last_time, times[k]);
      if (k > 0) {
        ++pairs;
        if (times[k] == times[k - 1]) ++ties;
      }
    }
  }
  s.tie_share = pairs ? static_cast<double>(ties) / static_cast<double>(pairs) : 0.0;
  s.repeat_share = s.interactions ? static_cast<double>(repeats) / static_cast<double>(s.interactions) : 0.0;
  // Distinct (user, item) pairs over all pairs: a repeated interaction fills no new cell.
  s.density = s.users && s.items ? static_cast<double>(s.interactions - repeats) /
                                       (static_cast<double>(s.users) * static_cast<double>(s.items))
                                 : 0.0;
  s.user_lengths = distribution(lengths);
  s.item_counts = distribution(counts);
  s.cold_items = std::count_if(counts.begin(), counts.end(), [](std::int64_t c) { return c < 5; });

  // Popularity concentration from the sorted counts.
  std::vector<std::int64_t> sorted = counts;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  const auto share_of_top = [&](double fraction) {
    const auto n = std::max<std::size_t>(1, static_cast<std::size_t>(fraction * static_cast<double>(sorted.size())));
    const auto sum = std::accumulate(sorted.begin(), sorted.begin() + std::min(n, sorted.size()), std::int64_t{0});
    return s.interactions ? static_cast<double>(sum) / static_cast<double>(s.interactions) : 0.0;
  };
  s.top1_share = share_of_top(0.01);
  s.top10_share = share_of_top(0.10);
  if (s.items > 0 && s.interactions > 0) {
    // Gini over ascending counts: sum_i (2i - n - 1) x_i / (n * sum x).
    double acc = 0;
    const auto n = static_cast<double>(sorted.size());
    for (std::size_t i = 0; i < sorted.size(); ++i)
      acc += (2.0 * static_cast<double>(i + 1) - n - 1.0) * static_cast<double>(sorted[sorted.size() - 1 - i]);
    s.item_gini = acc / (n * static_cast<double>(s.interactions));
  }

  std::vector<std::int32_t> order(s.items);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return counts[a] > counts[b]; });
  for (std::int64_t k = 0; k < std::min<std::int64_t>(top, s.items); ++k)
    s.top_items.emplace_back(d.item_ids[order[k]], std::string(d.title(order[k])), counts[order[k]]);

  for (const auto& [name, f] : d.categorical) {
    FeatureStats fs;
    fs.name = name;
    fs.kind = "categorical";
    fs.size = f.vocab_size();
    std::vector<std::int64_t> items_with(f.vocab.size(), 0), hits(f.vocab.size(), 0);
    for (std::int64_t i = 0; i < s.items; ++i) {
      const auto values = f.of(i);
      if (!values.empty()) ++fs.items_covered;
      for (std::int32_t v : values) {
        ++items_with[v];
        hits[v] += counts[i];
      }
    }
    fs.values_per_item = fs.items_covered ? static_cast<double>(f.values.size()) / static_cast<double>(fs.items_covered) : 0.0;
    std::vector<std::int32_t> vo(f.vocab.size());
    std::iota(vo.begin(), vo.end(), 0);
    std::stable_sort(vo.begin(), vo.end(), [&](auto a, auto b) { return items_with[a] > items_with[b]; });
    for (std::int64_t k = 0; k < std::min<std::int64_t>(top, f.vocab_size()); ++k)
      fs.top.emplace_back(f.vocab[vo[k]], items_with[vo[k]],
                          s.interactions ? static_cast<double>(hits[vo[k]]) / static_cast<double>(s.interactions) : 0.0);
    s.features.push_back(std::move(fs));
  }
  for (const auto& [name, f] : d.numeric) {
    FeatureStats fs;
    fs.name = name;
    fs.kind = "numeric";
    double sum = 0;
    for (std::int64_t i = 0; i < s.items; ++i) {
      if (!f.present[i]) continue;
      const double v = f.values[i];
      if (fs.items_covered == 0) fs.min = fs.max = v;
      fs.min = std::min(fs.min, v);
      fs.max = std::max(fs.max, v);
      sum += v;
      ++fs.items_covered;
    }
    fs.mean = fs.items_covered ? sum / static_cast<double>(fs.items_covered) : 0.0;
    s.features.push_back(std::move(fs));
  }
  for (const auto& [name, f] : d.dense) {
    FeatureStats fs;
    fs.name = name;
    fs.kind = "dense";
    fs.size = f.dim;
    fs.items_covered = std::count(f.present.begin(), f.present.end(), std::uint8_t{1});
    s.features.push_back(std::move(fs));
  }
  if (!d.titles.empty()) {
    FeatureStats fs;
    fs.name = "title text";
    fs.kind = "text";
    fs.items_covered = std::count_if(d.titles.begin(), d.titles.end(), [](const auto& t) { return !t.empty(); });
    s.features.push_back(std::move(fs));
  }
  return s;
}

namespace {

// Start of the UTC day, month or year holding `t`.
std::int64_t bin_start(std::int64_t t, const std::string& unit) {
  if (unit == "day") return t - (((t % 86400) + 86400) % 86400);
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return t;
  tm.tm_mday = 1;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  if (unit == "year") tm.tm_mon = 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

// The bin after the one starting at `start`.
std::int64_t next_bin(std::int64_t start, const std::string& unit) {
  if (unit == "day") return start + 86400;
  const std::time_t tt = static_cast<std::time_t>(start);
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return start + 86400;
  if (unit == "year") ++tm.tm_year;
  else ++tm.tm_mon;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

ExplorerStats compute_explorer_stats(const Dataset& d, std::int64_t min_interactions) {
  ExplorerStats x;
  x.loo_min_interactions = min_interactions;
  const std::int64_t items = d.num_items();
  std::vector<std::int64_t> counts(items, 0);
  std::int64_t lo = 0, hi = 0;
  bool any = false;
  for (std::int64_t u = 0; u < d.num_users(); ++u) {
    const auto row = d.user_items(u);
    if (static_cast<std::int64_t>(row.size()) < 5) ++x.cold_users;
    for (const auto i : row) ++counts[i];
    for (const auto t : d.user_times(u)) {
      lo = any ? std::min(lo, t) : t;
      hi = any ? std::max(hi, t) : t;
      any = true;
    }
  }
  x.items_without_interactions = std::count(counts.begin(), counts.end(), std::int64_t{0});

  // Interactions over time, in the finest calendar unit that keeps the chart readable.
  if (any) {
    const double days = static_cast<double>(hi - lo) / 86400.0;
    x.timeline_unit = days <= 400 ? "day" : days <= 400 * 30.4 ? "month" : "year";
    std::vector<std::int64_t> starts;
    for (std::int64_t b = bin_start(lo, x.timeline_unit); b <= hi && starts.size() < 100000;
         b = next_bin(b, x.timeline_unit))
      starts.push_back(b);
    std::vector<std::int64_t> n(starts.size(), 0);
    for (const auto t : d.timestamps) {
      const auto it = std::upper_bound(starts.begin(), starts.end(), t);
      if (it != starts.begin()) ++n[static_cast<std::size_t>(it - starts.begin() - 1)];
    }
    for (std::size_t k = 0; k < starts.size(); ++k) x.timeline.emplace_back(starts[k], n[k]);
  }

  // Lorenz curve over ascending counts, sampled at most 201 points.
  std::vector<std::int64_t> sorted = counts;
  std::sort(sorted.begin(), sorted.end());
  const double total = static_cast<double>(d.num_interactions());
  x.lorenz.emplace_back(0.0, 0.0);
  if (items > 0 && total > 0) {
    const std::size_t step = std::max<std::size_t>(1, sorted.size() / 200);
    double cum = 0;
    for (std::size_t k = 0; k < sorted.size(); ++k) {
      cum += static_cast<double>(sorted[k]);
      if ((k + 1) % step == 0 || k + 1 == sorted.size())
        x.lorenz.emplace_back(static_cast<double>(k + 1) / static_cast<double>(sorted.size()), cum / total);
    }
  }
  if (total > 0) {
    const auto tail = sorted.size() - static_cast<std::size_t>(0.2 * static_cast<double>(sorted.size()));
    x.long_tail_share = static_cast<double>(std::accumulate(
                            sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(tail), std::int64_t{0})) / total;
  }
  if (x.lorenz.back() != std::pair<double, double>{1.0, 1.0}) x.lorenz.emplace_back(1.0, 1.0);

  // What leave-one-out drops: the split the trainer uses, made here.
  const core::Split split = core::make_split(d, {.mode = core::SplitMode::leave_one_out, .min_interactions = min_interactions});
  x.loo_dropped_users = split.dropped_users;
  x.loo_held_out = 2 * static_cast<std::int64_t>(split.eval_users.size());
  x.loo_train_interactions = static_cast<std::int64_t>(split.train.flat_items().size());
  x.loo_dropped_interactions = d.num_interactions() - x.loo_held_out - x.loo_train_interactions;
  std::vector<std::uint8_t> trained(items, 0);
  for (const auto i : split.train.flat_items()) trained[i] = 1;
  for (std::int64_t i = 0; i < items; ++i)
    if (counts[i] > 0 && !trained[i]) ++x.loo_items_without_training;

  for (const auto& [name, f] : d.categorical) {
    std::vector<std::int64_t> with(f.vocab.size(), 0);
    for (std::int64_t i = 0; i < items; ++i)
      for (const std::int32_t v : f.of(i)) ++with[v];
    std::vector<std::size_t> order(f.vocab.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return with[a] > with[b]; });
    auto& out = x.values[name];
    for (const auto k : order) out.emplace_back(f.vocab[k], with[k]);
  }
  return x;
}

std::string format_stats(const Dataset& d, const DataStats& s) {
  std::string out;
  auto o = std::back_inserter(out);
  const auto pct = [](double x) { return fmt::format("{:.2f}%", 100.0 * x); };
  fmt::format_to(o, "data set     {}  ({})\n", d.name, d.source_dir.string());
  fmt::format_to(o, "fingerprint  {}\n", d.fingerprint);
  fmt::format_to(o, "users        {:>12}\nitems        {:>12}\ninteractions {:>12}\n", s.users, s.items, s.interactions);
  fmt::format_to(o, "density      {:>12}   (sparsity {})\n", pct(s.density), pct(1.0 - s.density));
  fmt::format_to(o, "time         {} .. {}   ({} of consecutive pairs tied, {} repeats)\n",
                 date(s.first_time), date(s.last_time), pct(s.tie_share), pct(s.repeat_share));

  const auto dist = [&](const char* title, const Distribution& x) {
    fmt::format_to(o, "\n{}: min {}  p10 {}  p25 {}  median {}  p75 {}  p90 {}  max {}  mean {:.1f}\n", title,
                   x.min, x.p10, x.p25, x.median, x.p75, x.p90, x.max, x.mean);
    std::int64_t peak = 1;
    for (const auto& [lo, n] : x.histogram) peak = std::max(peak, n);
    for (std::size_t b = 0; b < x.histogram.size(); ++b) {
      const auto [lo, n] = x.histogram[b];
      const std::int64_t hi = b + 1 < x.histogram.size() ? x.histogram[b + 1].first - 1 : x.max;
      const std::string range = hi > lo ? fmt::format("{}-{}", lo, hi) : fmt::format("{}", lo);
      fmt::format_to(o, "  {:>11} {:>9}  {}\n", range, n, std::string(static_cast<std::size_t>(40 * n / peak), '#'));
    }
  };
  dist("interactions per user", s.user_lengths);
  dist("interactions per item", s.item_counts);
  fmt::format_to(o, "popularity: top 1% of items hold {}, top 10% hold {}; Gini {:.3f}; {} items with < 5 interactions\n",
                 pct(s.top1_share), pct(s.top10_share), s.item_gini, s.cold_items);

  fmt::format_to(o, "\ntop items:\n");
  for (const auto& [id, title, n] : s.top_items)
    fmt::format_to(o, "  {:>10}  {:>8}  {}\n", id, n, title);

  fmt::format_to(o, "\nfeatures:{}\n", s.features.empty() ? " none" : "");
  for (const auto& f : s.features) {
    const std::string cover = fmt::format("{}/{} items", f.items_covered, s.items);
    if (f.kind == "categorical") {
      fmt::format_to(o, "  {:<10} categorical  {} values, {}, {:.2f} per item\n", f.name, f.size, cover, f.values_per_item);
      for (const auto& [value, items, share] : f.top)
        fmt::format_to(o, "      {:<28} {:>7} items  {:>7} of interactions\n", value, items, pct(share));
    } else if (f.kind == "numeric") {
      fmt::format_to(o, "  {:<10} numeric      {}, range {} .. {}, mean {:.1f}\n", f.name, cover, f.min, f.max, f.mean);
    } else if (f.kind == "dense") {
      fmt::format_to(o, "  {:<10} dense        dim {}, {}\n", f.name, f.size, cover);
    } else {
      fmt::format_to(o, "  {:<10} text         {}\n", f.name, cover);
    }
  }
  return out;
}

}  // namespace recrun::data
