// recrun/chunked_ce.hpp — softmax cross-entropy over a whole catalogue, computed over chunks of
// positions, so that its memory does not grow with positions x items.
//
// A model that scores hidden states h [M, H] against every item (logits = h · W^T + b, [M, N])
// and trains them with the mean cross-entropy would normally hold several [M, N] tensors at once
// (the logits, their log-softmax, and in backward their gradient): at 20,000 positions and 27,000
// items that is gigabytes per tensor. chunked_cross_entropy() goes through the positions a chunk
// at a time: for each chunk it forms the logits, their log-sum-exp, and — when gradients are
// wanted — the chunk's gradient (softmax minus one-hot), which it folds at once into the
// gradients of h, W and b. Backward then only scales those by the incoming gradient. So the
// loss's working memory is O(chunk x items), no logits are recomputed, and the matrix products
// are the same three an unchunked loss runs (forward, and two in backward).
//
// Inside a Bf16Autocast scope the products run in bfloat16 (h and W cast once per call), while
// the log-sum-exp, the softmax and the accumulated gradients stay float32, as the unchunked
// loss does under autocast. The gradients equal those of the unchunked loss to float rounding
// (tested); the function is differentiable once (no double backward).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>

#include "recrun/fields.hpp"

namespace recrun {

/// Working memory the automatic chunk size aims at for one chunk: 256 MiB.
inline constexpr std::int64_t kCeChunkBudgetBytes = std::int64_t{256} << 20;

/// Bytes one (position, item) pair of a chunk holds at the peak: the float32 logits that become
/// the softmax in place, plus their bfloat16 copy under autocast (counted always, so the size
/// does not depend on precision).
inline constexpr std::int64_t kCeBytesPerLogit = 8;

/// Positions per chunk: `requested` when it is positive, else as many as keep one chunk's
/// working set (chunk x num_items x kCeBytesPerLogit) within `budget_bytes`, at least 1.
std::int64_t ce_chunk_rows(std::int64_t num_items, std::int64_t requested = 0,
                           std::int64_t budget_bytes = kCeChunkBudgetBytes);

/// Peak bytes of the loss's working set for `positions` positions over `num_items` items in
/// chunks of `chunk` (0 = automatic) positions: one chunk's logits, plus the float32 gradients
/// it accumulates for the hidden states and the item table (`hidden` wide).
std::int64_t ce_working_bytes(std::int64_t positions, std::int64_t num_items, std::int64_t hidden,
                              std::int64_t chunk = 0);

/// Mean softmax cross-entropy of `hidden` [M, H] against `weight` [N, H] (plus `bias` [N] when
/// given) with int64 targets [M] in [0, N), computed `chunk` positions at a time (0 = automatic,
/// see ce_chunk_rows). Returns a float32 scalar (NaN when M = 0, like torch's mean). Gradients
/// flow to hidden, weight and bias as they would through
/// `cross_entropy(linear(hidden, weight, bias).to(float), targets)`.
__attribute__((visibility("default")))
torch::Tensor chunked_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                    const std::optional<torch::Tensor>& bias,
                                    const torch::Tensor& targets, std::int64_t chunk = 0);

/// The standard chunk parameter of a model with a full cross-entropy loss: nest it with
/// `f.nest(&MyOptions::ce, recrun::declare_ce_chunk_field)`.
struct CeChunkOptions {
  /// Positions per chunk of the cross-entropy; 0 = automatic (from kCeChunkBudgetBytes).
  std::int64_t ce_chunk = 0;
};

/// Declares `ce_chunk` (>= 0; default 0 = automatic).
void declare_ce_chunk_field(Fields<CeChunkOptions>& fields);

}  // namespace recrun
