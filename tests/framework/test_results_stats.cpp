// Statistics of `recrun results`: mean ± std over seeds and the paired tests, against a worked
// example computed independently of the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "recrun/error.hpp"
#include "results/stats.hpp"

namespace recrun::results {
namespace {

TEST(ResultsStats, MeanAndSampleStandardDeviation) {
  // 0.30, 0.32, 0.34: mean 0.32, deviations -0.02, 0, 0.02, sum of squares 0.0008,
  // sample variance 0.0008 / 2 = 0.0004, std 0.02.
  const auto s = summarize({0.30, 0.32, 0.34});
  EXPECT_EQ(s.n, 3u);
  EXPECT_NEAR(s.mean, 0.32, 1e-15);
  EXPECT_NEAR(s.std, 0.02, 1e-15);
  const auto one = summarize({0.5, std::nan("")});  // NaN left out
  EXPECT_EQ(one.n, 1u);
  EXPECT_EQ(one.mean, 0.5);
  EXPECT_TRUE(std::isnan(one.std));
  EXPECT_TRUE(std::isnan(summarize({}).mean));
}

// The worked example. a - b = d = [1, 2, 3, -1, 4, 0].
//
// Paired t-test: n = 6, mean(d) = 9/6 = 1.5; squared deviations 0.25 + 0.25 + 2.25 + 6.25 +
// 6.25 + 2.25 = 17.5; s^2 = 17.5/5 = 3.5, s = 1.8708287; t = 1.5 / (s/sqrt(6)) = 1.9639610;
// df = 5. For odd df Student's t has a closed-form CDF; for df = 5, with theta = atan(t/sqrt 5),
// F(t) = 1/2 + (theta + sin(theta) cos(theta) (1 + 2/3 cos^2(theta))) / pi, so
// p = 2 (1 - F(1.9639610)) = 0.10674552 (evaluated with Python's math module, not Boost).
// Cohen's d_z = 1.5 / 1.8708287 = 0.80178373.
//
// Wilcoxon signed-rank: drop the zero; |d| = 1, 2, 3, 1, 4 get ranks 1.5, 3, 4, 1.5, 5 (the
// two 1s share ranks 1 and 2). W+ = 1.5 + 3 + 4 + 5 = 13.5, W- = 1.5, n = 5. Under H0 the mean
// is n(n+1)/4 = 7.5 and the variance n(n+1)(2n+1)/24 - sum(t^3 - t)/48 = 13.75 - 6/48 =
// 13.625; z = (13.5 - 7.5) / sqrt(13.625) = 1.6254851; p = 2 (1 - Phi(z)) = 0.10405923
// (Python's statistics.NormalDist). Rank-biserial r = (13.5 - 1.5) / 15 = 0.8.
TEST(ResultsStats, PairedTestsMatchTheWorkedExample) {
  const std::vector<double> b{0.5, 0.25, 0.0, 2.0, 1.0, 0.75};
  std::vector<double> a(b.size());
  const std::vector<double> d{1, 2, 3, -1, 4, 0};
  for (std::size_t i = 0; i < b.size(); ++i) a[i] = b[i] + d[i];

  const TTest t = paired_t_test(a, b);
  EXPECT_EQ(t.n, 6u);
  EXPECT_NEAR(t.mean_diff, 1.5, 1e-12);
  EXPECT_NEAR(t.t, 1.9639610121239313, 1e-9);
  EXPECT_NEAR(t.p, 0.10674552235509238, 1e-9);
  EXPECT_NEAR(t.cohen_dz, 0.8017837257372732, 1e-9);

  const WilcoxonTest w = wilcoxon_signed_rank(a, b);
  EXPECT_EQ(w.n, 5u);
  EXPECT_EQ(w.zeros, 1u);
  EXPECT_DOUBLE_EQ(w.w_plus, 13.5);
  EXPECT_DOUBLE_EQ(w.w_minus, 1.5);
  EXPECT_NEAR(w.z, 1.6254851075486312, 1e-9);
  EXPECT_NEAR(w.p, 0.10405923452892796, 1e-9);
  EXPECT_NEAR(w.rank_biserial, 0.8, 1e-12);

  // Swapping the sides flips the signs and keeps the p-values.
  const TTest t2 = paired_t_test(b, a);
  EXPECT_NEAR(t2.t, -t.t, 1e-12);
  EXPECT_NEAR(t2.p, t.p, 1e-12);
  const WilcoxonTest w2 = wilcoxon_signed_rank(b, a);
  EXPECT_DOUBLE_EQ(w2.w_plus, 1.5);
  EXPECT_NEAR(w2.p, w.p, 1e-12);
}

// A large clear difference: 40 users, b = a - 0.1 exactly for 30 of them and a + 0.01 for 10.
// t is large and p tiny; Wilcoxon's ranks: ten |d| = 0.01 take ranks 1..10 (mean 5.5), the
// thirty 0.1s ranks 11..40 (mean 25.5): W+ = 30 * 25.5 = 765, W- = 55.
TEST(ResultsStats, ClearDifferencesAreSignificant) {
  std::vector<double> a(40), b(40);
  for (int i = 0; i < 40; ++i) {
    a[i] = 0.5;
    b[i] = i < 30 ? 0.4 : 0.51;
  }
  const WilcoxonTest w = wilcoxon_signed_rank(a, b);
  EXPECT_NEAR(w.w_plus, 765, 1e-9);
  EXPECT_NEAR(w.w_minus, 55, 1e-9);
  EXPECT_LT(w.p, 1e-4);
  EXPECT_LT(paired_t_test(a, b).p, 1e-6);
}

TEST(ResultsStats, DegenerateInputs) {
  // No differences at all: nothing to test.
  const std::vector<double> x{0.1, 0.2, 0.3};
  EXPECT_EQ(paired_t_test(x, x).p, 1.0);
  EXPECT_EQ(paired_t_test(x, x).t, 0.0);
  const WilcoxonTest w = wilcoxon_signed_rank(x, x);
  EXPECT_EQ(w.n, 0u);
  EXPECT_EQ(w.p, 1.0);
  // The same difference for everyone: certain.
  EXPECT_EQ(paired_t_test({1, 2, 3}, {0, 1, 2}).p, 0.0);
  EXPECT_THROW(paired_t_test({1}, {0}), Error);
  EXPECT_THROW(paired_t_test({1, 2}, {0}), Error);
  EXPECT_THROW(wilcoxon_signed_rank({1, 2}, {0}), Error);
}

}  // namespace
}  // namespace recrun::results
