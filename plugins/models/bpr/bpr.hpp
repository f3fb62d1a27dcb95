// BPR-MF's pieces, header-only so that the plugin and its tests run the same code: the BPR loss
// and the draw of training triples (user, positive, negative).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace recrun::bpr {

/// Mean over the batch of -log sigmoid(pos - neg) (averaged over a row's negatives when `neg` is
/// [B, K]), plus reg times the mean of `sq_norm` [B] (each triple's squared parameter norm: the
/// paper's lambda ||Theta||^2 over the parameters the triple touches).
inline torch::Tensor bpr_loss(const torch::Tensor& pos, const torch::Tensor& neg,
                              const torch::Tensor& sq_norm, double reg) {
  const torch::Tensor diff = pos.dim() < neg.dim() ? pos.unsqueeze(1) - neg : pos - neg;
  torch::Tensor loss = -torch::log_sigmoid(diff).mean();
  if (reg > 0) loss = loss + reg * sq_norm.mean();
  return loss;
}

/// Users' distinct items, sorted (CSR), for drawing negatives the user has not consumed.
struct Positives {
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> items;

  template <class Histories>
  static Positives of(std::int64_t users, const Histories& history) {
    Positives p;
    std::vector<std::int32_t> row;
    for (std::int64_t u = 0; u < users; ++u) {
      const auto h = history(u);
      row.assign(h.begin(), h.end());
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      p.items.insert(p.items.end(), row.begin(), row.end());
      p.offsets.push_back(static_cast<std::int64_t>(p.items.size()));
    }
    return p;
  }
  std::int64_t pairs() const { return static_cast<std::int64_t>(items.size()); }
  /// The user of pair p (binary search over the offsets).
  std::int64_t user_of(std::int64_t p) const {
    return static_cast<std::int64_t>(std::upper_bound(offsets.begin(), offsets.end(), p) -
                                     offsets.begin()) - 1;
  }
  bool has(std::int64_t u, std::int32_t item) const {
    return std::binary_search(items.begin() + offsets[u], items.begin() + offsets[u + 1], item);
  }
};

/// Draws an item uniformly among those user u has not consumed (rejection sampling; after 32
/// rejections, as for a user who consumed nearly everything, the last draw is kept).
inline std::int32_t draw_negative(const Positives& p, std::int64_t u, std::int64_t num_items,
                                  std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int32_t> any(0, static_cast<std::int32_t>(num_items - 1));
  std::int32_t j = any(rng);
  for (int tries = 0; tries < 32 && p.has(u, j); ++tries) j = any(rng);
  return j;
}

/// Training triples of one batch: users [B], positives [B], negatives [B, k] (int64).
struct Triples {
  torch::Tensor users, positives, negatives;
};

/// Triples for the pairs `batch` (indices into p.items), with k negatives each from `rng`.
inline Triples draw_triples(const Positives& p, std::span<const std::int64_t> batch,
                            std::int64_t k, std::int64_t num_items, std::mt19937_64& rng) {
  const auto b = static_cast<std::int64_t>(batch.size());
  Triples t{torch::empty({b}, torch::kInt64), torch::empty({b}, torch::kInt64),
            torch::empty({b, k}, torch::kInt64)};
  auto* u = t.users.data_ptr<std::int64_t>();
  auto* i = t.positives.data_ptr<std::int64_t>();
  auto* j = t.negatives.data_ptr<std::int64_t>();
  for (std::int64_t r = 0; r < b; ++r) {
    u[r] = p.user_of(batch[r]);
    i[r] = p.items[batch[r]];
    for (std::int64_t s = 0; s < k; ++s) j[r * k + s] = draw_negative(p, u[r], num_items, rng);
  }
  return t;
}

}  // namespace recrun::bpr
