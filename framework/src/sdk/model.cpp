#include "recrun/model.hpp"

#include "recrun/distributed.hpp"
#include "sdk/host_access.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <stdexcept>

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

namespace {

// Rows of the upper triangle of X^T X (j >= i) from the column view of X, then the mirror.
// Row i only reads the users that have item i and writes only row i, so rows are independent;
// they are dealt to threads cyclically because low rows of an upper triangle carry more work.
template <typename T>
void fill_gram(std::int64_t n, const std::vector<std::int32_t>& items,
               const std::vector<std::int64_t>& col_offsets,
               const std::vector<std::int64_t>& col_from, const std::vector<std::int64_t>& col_to,
               T* g) {
  const std::int64_t stripes = std::max<std::int64_t>(1, at::get_num_threads());
  at::parallel_for(0, stripes, 1, [&](std::int64_t s_begin, std::int64_t s_end) {
    std::vector<std::int32_t> count(static_cast<std::size_t>(n), 0);
    for (std::int64_t s = s_begin; s < s_end; ++s)
      for (std::int64_t i = s; i < n; i += stripes) {
        for (std::int64_t e = col_offsets[i]; e < col_offsets[i + 1]; ++e)
          // col_from[e] is item i itself in that user's sorted row; the rest are items above i.
          for (std::int64_t k = col_from[e] + 1; k < col_to[e]; ++k) ++count[items[k]];
        T* row = g + i * n;
        row[i] = static_cast<T>(col_offsets[i + 1] - col_offsets[i]);
        for (std::int64_t j = i + 1; j < n; ++j) {
          row[j] = static_cast<T>(count[j]);
          count[j] = 0;
        }
      }
  });
  // Lower triangle = transposed upper, copied in square tiles so both sides stay in cache.
  constexpr std::int64_t tile = 64;
  const std::int64_t tiles = (n + tile - 1) / tile;
  at::parallel_for(0, tiles, 1, [&](std::int64_t t_begin, std::int64_t t_end) {
    for (std::int64_t ti = t_begin; ti < t_end; ++ti) {
      const std::int64_t i0 = ti * tile, i1 = std::min(n, i0 + tile);
      for (std::int64_t j0 = 0; j0 <= i0; j0 += tile) {
        const std::int64_t j1 = std::min(n, j0 + tile);
        for (std::int64_t i = i0; i < i1; ++i)
          for (std::int64_t j = j0; j < std::min(j1, i); ++j) g[i * n + j] = g[j * n + i];
      }
    }
  });
}

}  // namespace

torch::Tensor Interactions::gram(torch::ScalarType dtype) const {
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64)
    throw std::invalid_argument("Interactions::gram: dtype must be float32 or float64");
  const std::int64_t users = num_users(), n = num_items_;
  // Each user's items sorted and deduplicated in place in a copy (same offsets; the unique
  // prefix of a row has length unique[u]).
  std::vector<std::int32_t> sorted(items_);
  std::vector<std::int64_t> unique(static_cast<std::size_t>(users));
  at::parallel_for(0, users, 64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t u = b; u < e; ++u) {
      auto* first = sorted.data() + offsets_[u];
      auto* last = sorted.data() + offsets_[u + 1];
      std::sort(first, last);
      unique[u] = std::unique(first, last) - first;
    }
  });
  // Column view: for item i, where it sits in each user's sorted row and where that row ends.
  std::vector<std::int64_t> col_offsets(static_cast<std::size_t>(n) + 1, 0);
  for (std::int64_t u = 0; u < users; ++u)
    for (std::int64_t k = offsets_[u]; k < offsets_[u] + unique[u]; ++k) ++col_offsets[sorted[k] + 1];
  for (std::int64_t i = 0; i < n; ++i) col_offsets[i + 1] += col_offsets[i];
  std::vector<std::int64_t> fill(col_offsets.begin(), col_offsets.end() - 1);
  std::vector<std::int64_t> col_from(static_cast<std::size_t>(col_offsets[n]));
  std::vector<std::int64_t> col_to(col_from.size());
  for (std::int64_t u = 0; u < users; ++u) {
    const std::int64_t end = offsets_[u] + unique[u];
    for (std::int64_t k = offsets_[u]; k < end; ++k) {
      const std::int64_t e = fill[sorted[k]]++;
      col_from[e] = k;
      col_to[e] = end;
    }
  }
  torch::Tensor g = torch::empty({n, n}, dtype);
  if (dtype == torch::kFloat32)
    fill_gram(n, sorted, col_offsets, col_from, col_to, g.data_ptr<float>());
  else
    fill_gram(n, sorted, col_offsets, col_from, col_to, g.data_ptr<double>());
  return g;
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

bool TrainContext::out_of_time() const {
  // Every rank has the same options, so a run without a budget has none on any rank.
  if (deadline_ == std::chrono::steady_clock::time_point::max()) return false;
  return any_rank(std::chrono::steady_clock::now() >= deadline_);
}

int TrainContext::rank() const { return process_rank(); }

int TrainContext::world_size() const { return process_world_size(); }

std::pair<std::int64_t, std::int64_t> TrainContext::shard_range(std::int64_t n) const {
  return recrun::shard_range(n, process_rank(), process_world_size());
}

namespace sdk_internal {

void TrainContextAccess::begin_epoch(TrainContext& ctx, std::int64_t epoch) {
  ctx.epoch_ = epoch;
  ctx.logged_.clear();
}

void TrainContextAccess::set_deadline(TrainContext& ctx, std::chrono::steady_clock::time_point t) {
  ctx.deadline_ = t;
}

const std::map<std::string, double>& TrainContextAccess::logged(const TrainContext& ctx) {
  return ctx.logged_;
}

}  // namespace sdk_internal

}  // namespace recrun
