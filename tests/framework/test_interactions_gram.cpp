// Interactions::gram (the sparse X^T X that EASE uses) against the dense product.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <random>

#include "recrun/model.hpp"

namespace recrun {
namespace {

// Random histories with repeated items (which count once, as in dense_rows), empty users and
// a skewed item distribution so some pairs are shared by many users.
Interactions random_histories(std::int64_t users, std::int64_t items, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  for (std::int64_t u = 0; u < users; ++u) {
    const int n = static_cast<int>(rng() % 40);  // 0..39, some users empty
    for (int k = 0; k < n; ++k) {
      const auto a = rng() % items, b = rng() % items;
      flat.push_back(static_cast<std::int32_t>(std::min(a, b)));  // low ids are popular
    }
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
  }
  return Interactions(offsets, flat, items);
}

torch::Tensor dense_gram(const Interactions& x, torch::ScalarType dtype) {
  std::vector<std::int64_t> all(x.num_users());
  std::iota(all.begin(), all.end(), 0);
  const auto d = x.dense_rows(all).to(dtype);
  return d.t().mm(d);
}

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadsGuard() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(InteractionsGram, EqualsDenseProductExactly) {
  for (const int threads : {1, 2, 3}) {
    ThreadsGuard guard(threads);
    for (const std::uint64_t seed : {1u, 2u, 3u}) {
      // 131 items: not a multiple of the 64-wide mirror tiles.
      const Interactions x = random_histories(500, 131, seed);
      for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
        const torch::Tensor g = x.gram(dtype);
        ASSERT_EQ(g.scalar_type(), dtype);
        ASSERT_EQ(g.sizes(), (std::vector<std::int64_t>{131, 131}));
        EXPECT_TRUE(torch::equal(g, dense_gram(x, dtype)))
            << "threads " << threads << " seed " << seed << " max diff "
            << (g - dense_gram(x, dtype)).abs().max().item<double>();
        EXPECT_TRUE(torch::equal(g, g.t()));
      }
    }
  }
}

TEST(InteractionsGram, HandComputedCounts) {
  // user 0: {0, 2, 2}; user 1: {}; user 2: {2, 1, 0}; user 3: {1}
  const Interactions x({0, 3, 3, 6, 7}, {0, 2, 2, 2, 1, 0, 1}, 4);
  const torch::Tensor expected = torch::tensor({{2.f, 1.f, 2.f, 0.f},
                                                {1.f, 2.f, 1.f, 0.f},
                                                {2.f, 1.f, 2.f, 0.f},
                                                {0.f, 0.f, 0.f, 0.f}});
  EXPECT_TRUE(torch::equal(x.gram(), expected)) << x.gram();
}

TEST(InteractionsGram, RefusesIntegerTypes) {
  const Interactions x({0, 1}, {0}, 1);
  EXPECT_THROW(x.gram(torch::kInt32), std::invalid_argument);
}

}  // namespace
}  // namespace recrun
