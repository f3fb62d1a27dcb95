#include "results/stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <numeric>

#include "recrun/error.hpp"

namespace recrun::results {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> differences(const std::vector<double>& a, const std::vector<double>& b,
                                const char* test) {
  if (a.size() != b.size())
    throw Error(fmt::format("{}: the two sides have {} and {} values; a paired test needs the "
                            "same users on both",
                            test, a.size(), b.size()));
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

}  // namespace

Summary summarize(const std::vector<double>& values) {
  Summary s;
  double sum = 0;
  for (const double v : values)
    if (!std::isnan(v)) sum += v, ++s.n;
  s.mean = s.n ? sum / static_cast<double>(s.n) : kNaN;
  if (s.n < 2) {
    s.std = kNaN;
    return s;
  }
  double sq = 0;
  for (const double v : values)
    if (!std::isnan(v)) sq += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(sq / static_cast<double>(s.n - 1));
  return s;
}

TTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  const auto d = differences(a, b, "paired t-test");
  if (d.size() < 2)
    throw Error(fmt::format("paired t-test: {} pair(s); at least 2 are needed", d.size()));
  TTest r;
  r.n = d.size();
  const double n = static_cast<double>(d.size());
  r.mean_diff = std::accumulate(d.begin(), d.end(), 0.0) / n;
  double sq = 0;
  for (const double x : d) sq += (x - r.mean_diff) * (x - r.mean_diff);
  const double sd = std::sqrt(sq / (n - 1));
  if (sd == 0) {
    const double inf = std::numeric_limits<double>::infinity();
    r.t = r.mean_diff == 0 ? 0.0 : std::copysign(inf, r.mean_diff);
    r.p = r.mean_diff == 0 ? 1.0 : 0.0;
    r.cohen_dz = r.mean_diff == 0 ? 0.0 : r.t;
    return r;
  }
  r.t = r.mean_diff / (sd / std::sqrt(n));
  r.cohen_dz = r.mean_diff / sd;
  const boost::math::students_t dist(n - 1);
  r.p = std::min(1.0, 2 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t))));
  return r;
}

WilcoxonTest wilcoxon_signed_rank(const std::vector<double>& a, const std::vector<double>& b) {
  auto d = differences(a, b, "Wilcoxon signed-rank test");
  WilcoxonTest r;
  std::vector<double> nonzero;
  nonzero.reserve(d.size());
  for (const double x : d)
    if (x != 0) nonzero.push_back(x);
  r.zeros = d.size() - nonzero.size();
  r.n = nonzero.size();
  if (r.n == 0) return r;
  std::vector<std::size_t> order(r.n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) {
    return std::fabs(nonzero[i]) < std::fabs(nonzero[j]);
  });
  double tie_term = 0;  // sum of t^3 - t over groups of tied |d|
  for (std::size_t i = 0; i < r.n;) {
    std::size_t j = i;
    while (j + 1 < r.n && std::fabs(nonzero[order[j + 1]]) == std::fabs(nonzero[order[i]])) ++j;
    const double rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    const double t = static_cast<double>(j - i + 1);
    tie_term += t * t * t - t;
    for (std::size_t k = i; k <= j; ++k)
      (nonzero[order[k]] > 0 ? r.w_plus : r.w_minus) += rank;
    i = j + 1;
  }
  const double n = static_cast<double>(r.n);
  const double mean = n * (n + 1) / 4;
  const double variance = n * (n + 1) * (2 * n + 1) / 24 - tie_term / 48;
  r.rank_biserial = (r.w_plus - r.w_minus) / (r.w_plus + r.w_minus);
  if (variance <= 0) {  // one non-zero difference cannot be tested
    r.z = 0;
    r.p = 1;
    return r;
  }
  r.z = (r.w_plus - mean) / std::sqrt(variance);
  const boost::math::normal standard;
  r.p = std::min(1.0, 2 * boost::math::cdf(boost::math::complement(standard, std::fabs(r.z))));
  return r;
}

}  // namespace recrun::results
