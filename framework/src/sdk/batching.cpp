// Batching for the sequential models (recrun/seq.hpp): length-bucketed batches and row indexes
// of masked positions.
#include "recrun/seq.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <numeric>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"

namespace recrun {

std::vector<std::vector<std::int64_t>> length_bucketed_batches(
    std::span<const std::int64_t> ids, std::span<const std::int64_t> lengths,
    std::int64_t batch_size, std::mt19937_64* rng) {
  if (ids.size() != lengths.size())
    throw Error(fmt::format("length_bucketed_batches: {} ids but {} lengths", ids.size(),
                            lengths.size()));
  if (batch_size < 1) throw ParamError("batch_size must be >= 1");
  std::vector<std::size_t> order(ids.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Shuffling before the stable sort breaks ties at random, so batches of equally long (e.g.
  // truncated) histories differ from epoch to epoch.
  if (rng) std::shuffle(order.begin(), order.end(), *rng);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return lengths[a] < lengths[b]; });
  std::vector<std::vector<std::int64_t>> batches;
  batches.reserve((order.size() + batch_size - 1) / batch_size);
  for (std::size_t begin = 0; begin < order.size(); begin += batch_size) {
    const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(batch_size));
    auto& batch = batches.emplace_back();
    batch.reserve(end - begin);
    for (std::size_t k = begin; k < end; ++k) batch.push_back(ids[order[k]]);
  }
  if (rng) std::shuffle(batches.begin(), batches.end(), *rng);
  return batches;
}

PackedSequences pack_sequences(std::span<const std::span<const std::int32_t>> histories,
                               std::int64_t max_len, std::int64_t shift, std::int64_t pad,
                               std::int64_t append) {
  const auto b = static_cast<std::int64_t>(histories.size());
  const std::int64_t extra = append >= 0 ? 1 : 0;
  std::int64_t width = 0;
  for (const auto& h : histories)
    width = std::max(width, std::min<std::int64_t>(max_len, static_cast<std::int64_t>(h.size())));
  width += extra;
  PackedSequences out;
  out.tokens = torch::full({b, width}, pad, torch::kInt64);
  out.lengths = torch::empty({b}, torch::kInt64);
  std::int64_t* tokens = out.tokens.data_ptr<std::int64_t>();
  std::int64_t* lengths = out.lengths.data_ptr<std::int64_t>();
  for (std::int64_t r = 0; r < b; ++r) {
    const auto& h = histories[r];
    const std::int64_t n = std::min<std::int64_t>(max_len, static_cast<std::int64_t>(h.size()));
    const std::int32_t* src = h.data() + (static_cast<std::int64_t>(h.size()) - n);
    std::int64_t* row = tokens + r * width;
    for (std::int64_t k = 0; k < n; ++k) row[k] = src[k] + shift;
    if (extra) row[n] = append;
    lengths[r] = n + extra;
  }
  return out;
}

RowIndex row_index(const torch::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2 && mask.scalar_type() == torch::kBool, "row_index: bool [B, T]");
  const torch::Tensor counts = mask.sum(1);
  const std::int64_t q = mask.size(0) == 0 ? 0 : counts.max().item<std::int64_t>();
  // A stable descending sort of the 0/1 row puts the true columns first, in increasing order.
  const torch::Tensor order =
      std::get<1>(torch::sort(mask.to(torch::kUInt8), /*stable=*/true, /*dim=*/1,
                              /*descending=*/true));
  RowIndex out;
  out.index = order.narrow(1, 0, q).contiguous();
  out.valid = torch::arange(q, torch::kInt64).unsqueeze(0).lt(counts.unsqueeze(1));
  return out;
}

}  // namespace recrun
