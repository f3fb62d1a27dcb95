#include "recrun/model.hpp"

#include <algorithm>

namespace recrun {

Interactions::Interactions(std::vector<std::int64_t> offsets, std::vector<std::int32_t> items,
                           std::int64_t num_items)
    : offsets_(std::move(offsets)), items_(std::move(items)), num_items_(num_items) {}

torch::Tensor Interactions::item_counts() const {
  auto counts = torch::zeros({num_items_}, torch::kInt64);
  auto* c = counts.data_ptr<std::int64_t>();
  for (const std::int32_t i : items_) ++c[i];
  return counts;
}

torch::Tensor Interactions::dense_rows(std::span<const std::int64_t> users) const {
  auto out = torch::zeros({static_cast<std::int64_t>(users.size()), num_items_}, torch::kFloat);
  auto* o = out.data_ptr<float>();
  for (std::size_t r = 0; r < users.size(); ++r)
    for (const std::int32_t i : items(users[r])) o[r * num_items_ + i] = 1.0f;
  return out;
}

UserBatch::UserBatch(std::vector<std::int64_t> users,
                     std::vector<std::span<const std::int32_t>> histories, std::int64_t num_items)
    : users_(std::move(users)), histories_(std::move(histories)), num_items_(num_items) {}

torch::Tensor UserBatch::sequences(std::int64_t max_len, std::int64_t shift, std::int64_t pad,
                                   std::int64_t extra, std::int64_t fill) const {
  std::int64_t longest = 0;
  for (const auto& h : histories_)
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(h.size()));
  const std::int64_t body = std::min(max_len, longest);
  const std::int64_t width = body + extra;
  auto out = torch::full({size(), width}, pad, torch::kInt64);
  auto* o = out.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < size(); ++b) {
    const auto& h = histories_[b];
    const std::int64_t n = std::min<std::int64_t>(body, static_cast<std::int64_t>(h.size()));
    std::int64_t* row = o + b * width;
    const std::int32_t* src = h.data() + (h.size() - n);
    for (std::int64_t k = 0; k < n; ++k) row[body - n + k] = src[k] + shift;
    for (std::int64_t k = body; k < width; ++k) row[k] = fill;
  }
  return out;
}

torch::Tensor UserBatch::bag() const {
  auto out = torch::zeros({size(), num_items_}, torch::kFloat);
  auto* o = out.data_ptr<float>();
  for (std::int64_t b = 0; b < size(); ++b)
    for (const std::int32_t i : histories_[b]) o[b * num_items_ + i] = 1.0f;
  return out;
}

TrainContext::TrainContext(const Dataset& dataset, const Interactions& train, std::uint64_t seed,
                           int num_threads)
    : dataset_(&dataset), train_(&train), seed_(seed), rng_(seed), num_threads_(num_threads) {}

}  // namespace recrun
