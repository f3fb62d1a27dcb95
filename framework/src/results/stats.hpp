// Statistics for comparing runs: mean and standard deviation over seeds, and paired tests on
// per-user metrics (Student's t and Wilcoxon's signed-rank), with distributions from Boost.Math.
#pragma once

#include <cstddef>
#include <vector>

namespace recrun::results {

/// Mean, sample standard deviation (n - 1 in the denominator) and count of some values.
/// NaN values are left out; mean is NaN without values, std NaN with fewer than two.
struct Summary {
  double mean = 0;
  double std = 0;
  std::size_t n = 0;
};
Summary summarize(const std::vector<double>& values);

/// Paired two-sided t-test of a[i] - b[i].
struct TTest {
  std::size_t n = 0;        ///< pairs
  double mean_diff = 0;     ///< mean of a - b
  double t = 0;             ///< t statistic, n - 1 degrees of freedom
  double p = 1;             ///< two-sided p-value
  double cohen_dz = 0;      ///< effect size: mean difference / standard deviation of differences
};
/// Throws recrun::Error when the lengths differ or there are fewer than two pairs.
/// Identical differences (standard deviation 0) give t = ±inf and p = 0, or t = 0 and p = 1
/// when they are all zero.
TTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b);

/// Wilcoxon signed-rank test of a[i] - b[i], two-sided: zero differences dropped (Wilcoxon's
/// method), ties given their average rank, and the normal approximation with the tie correction
/// of the variance (no continuity correction).
struct WilcoxonTest {
  std::size_t n = 0;         ///< non-zero differences
  std::size_t zeros = 0;     ///< pairs dropped because a[i] == b[i]
  double w_plus = 0;         ///< sum of the ranks of positive differences
  double w_minus = 0;        ///< sum of the ranks of negative differences
  double z = 0;              ///< (w_plus - n(n+1)/4) / sigma
  double p = 1;              ///< two-sided p-value; 1 when no difference is non-zero
  double rank_biserial = 0;  ///< effect size: (w_plus - w_minus) / (w_plus + w_minus)
};
/// Throws recrun::Error when the lengths differ.
WilcoxonTest wilcoxon_signed_rank(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace recrun::results
