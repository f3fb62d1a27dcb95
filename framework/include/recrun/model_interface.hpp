// recrun/model_interface.hpp — the Model interface and what the framework hands to it, with
// the Tensor class only (recrun/tensor.hpp). Plugins include recrun/model.hpp or
// recrun/plugin.hpp, which add all of LibTorch; the host's files that only pass models and
// tensors around include this one and compile in a fraction of the time.
#pragma once

#include "recrun/tensor.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "recrun/archive.hpp"
#include "recrun/dataset.hpp"

namespace recrun {

namespace sdk_internal {
struct TrainContextAccess;
}

/// Per-user, time-ordered item histories (the training part of a split) as CSR.
class Interactions {
 public:
  Interactions() = default;
  /// offsets has num_users + 1 entries; items are dense ids in [0, num_items).
  Interactions(std::vector<std::int64_t> offsets, std::vector<std::int32_t> items,
               std::int64_t num_items);
  /// Number of users (rows), including users with an empty history.
  std::int64_t num_users() const { return static_cast<std::int64_t>(offsets_.size()) - 1; }
  /// Number of items (columns).
  std::int64_t num_items() const { return num_items_; }
  /// Total number of interactions.
  std::int64_t size() const { return static_cast<std::int64_t>(items_.size()); }
  /// One user's items, oldest first.
  std::span<const std::int32_t> items(std::int64_t user) const {
    return {items_.data() + offsets_[user], items_.data() + offsets_[user + 1]};
  }
  /// Interactions per item as an int64 tensor [num_items].
  torch::Tensor item_counts() const;
  /// Dense 0/1 float matrix of the given users' items [users.size(), num_items].
  torch::Tensor dense_rows(std::span<const std::int64_t> users) const;
  /// Gram matrix X^T X of the 0/1 user-item matrix that dense_rows gives (an item repeated in
  /// a history counts once), [num_items, num_items] in `dtype` (float32 or float64).
  ///
  /// Built from the sparse rows: each user adds only its own item pairs, counted in integers
  /// and rounded once, so the result is exact (for counts below 2^24 in float32) and exactly
  /// symmetric. Item rows are shared between LibTorch's threads (at::parallel_for).
  torch::Tensor gram(torch::ScalarType dtype = c10::ScalarType::Float) const;
  /// CSR offsets (num_users + 1).
  const std::vector<std::int64_t>& offsets() const { return offsets_; }
  /// Concatenated items.
  const std::vector<std::int32_t>& flat_items() const { return items_; }

 private:
  std::vector<std::int64_t> offsets_{0};
  std::vector<std::int32_t> items_;
  std::int64_t num_items_ = 0;
};

/// Users to score, with their time-ordered histories. Sequential and bag-of-items models share it.
class UserBatch {
 public:
  UserBatch(std::vector<std::int64_t> users, std::vector<std::span<const std::int32_t>> histories,
            std::int64_t num_items);
  /// Number of users in the batch.
  std::int64_t size() const { return static_cast<std::int64_t>(users_.size()); }
  /// Dense user ids.
  const std::vector<std::int64_t>& users() const { return users_; }
  /// History of the i-th user, oldest first.
  std::span<const std::int32_t> history(std::int64_t i) const { return histories_[i]; }
  /// Number of items in the catalogue.
  std::int64_t num_items() const { return num_items_; }
  /// Left-padded int64 sequences [B, T] of the last `max_len` items, each id + `shift`.
  ///
  /// T = min(max_len, longest history) + `extra` (extra columns at the right are `fill`, e.g. a
  /// [MASK] token); padding on the left is `pad`. With shift 1 and pad 0, 0 marks padding.
  torch::Tensor sequences(std::int64_t max_len, std::int64_t shift = 1, std::int64_t pad = 0,
                          std::int64_t extra = 0, std::int64_t fill = 0) const;
  /// Dense 0/1 float matrix [B, num_items] of the items in each history.
  torch::Tensor bag() const;

 private:
  std::vector<std::int64_t> users_;
  std::vector<std::span<const std::int32_t>> histories_;
  std::int64_t num_items_;
};

/// What the Trainer hands to Model::fit_epoch.
class TrainContext {
 public:
  TrainContext(const Dataset& dataset, const Interactions& train, std::uint64_t seed,
               int num_threads);
  /// The whole data set: item ids, titles, features.
  const Dataset& dataset() const { return *dataset_; }
  /// Training histories (the split's train part; everything in full-data mode).
  const Interactions& train() const { return *train_; }
  /// 0-based index of the epoch being run.
  std::int64_t epoch() const { return epoch_; }
  /// The run's seed.
  std::uint64_t seed() const { return seed_; }
  /// A generator seeded from the run's seed; advance it, never reseed it. It is the same on
  /// every rank of a data-parallel run (batch order and anything that defines the global
  /// batch must come from it); LibTorch's default generator is seeded per rank (dropout).
  std::mt19937_64& rng() { return rng_; }
  /// Threads the run may use (already applied to LibTorch).
  int num_threads() const { return num_threads_; }
  /// Whether the wall-clock budget is spent: long epochs should check it between batches.
  ///
  /// In a data-parallel run every rank gets the same answer (true once any rank's budget is
  /// spent), so it is a collective call: check it at the same points on every rank, e.g. at
  /// the top of the batch loop, never under a condition that depends on this rank's shard.
  bool out_of_time() const;
  /// This process's rank and the number of processes of a data-parallel run (0 and 1 alone).
  int rank() const;
  int world_size() const;
  /// This rank's part [begin, end) of a global batch of `n` examples: the whole batch when
  /// alone. Contiguous, and sizes differ by at most one; a part may be empty when n < ranks.
  std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t n) const;
  /// This rank's part of a global batch (see shard_range). Every rank must draw the same global
  /// batches, from rng(), and pass its part's loss to recrun::step() with its weight.
  template <class T>
  std::span<const T> shard(std::span<const T> batch) const {
    const auto [begin, end] = shard_range(static_cast<std::int64_t>(batch.size()));
    return batch.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
  }
  template <class T>
  std::span<const T> shard(const std::vector<T>& batch) const {
    return shard(std::span<const T>(batch));
  }
  /// Records a training scalar for this epoch (logged as "train/<name>").
  void log(const std::string& name, double value) { logged_[name] = value; }

 private:
  // The host starts epochs and sets the deadline (sdk/host_access.hpp); plugin tests drive a
  // context with recrun::conformance::begin_epoch and set_deadline.
  friend struct sdk_internal::TrainContextAccess;
  const Dataset* dataset_;
  const Interactions* train_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  int num_threads_;
  std::int64_t epoch_ = 0;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::map<std::string, double> logged_;
};

/// What one call to fit_epoch reports.
struct EpochResult {
  /// Mean training loss of the epoch (NaN for models without one).
  double loss = std::numeric_limits<double>::quiet_NaN();
  /// Training examples processed (for throughput).
  std::int64_t examples = 0;
  /// True when the model is fully trained (closed-form models return it from their only epoch).
  bool converged = false;

  /// A closed-form fit that is complete.
  static EpochResult done() { EpochResult r; r.converged = true; return r; }
  /// An iterative epoch with its mean loss.
  static EpochResult of(double loss, std::int64_t examples) {
    EpochResult r; r.loss = loss; r.examples = examples; return r;
  }
};

/// A recommender. The framework owns data, split, training loop, evaluation and storage.
class Model {
 public:
  virtual ~Model() = default;
  /// Trains one epoch (or the whole closed-form fit, returning EpochResult::done()).
  virtual EpochResult fit_epoch(TrainContext& ctx) = 0;
  /// Scores every item for each user: float [B, num_items], higher is better.
  ///
  /// Called without gradients. Seen items are excluded by the evaluator; the model need not.
  /// Scores of one user must not depend on which other users share the batch.
  virtual torch::Tensor score(const UserBatch& users) = 0;
  /// Writes everything needed to score again.
  virtual void save(Archive& out) const = 0;
  /// Restores what save() wrote into a model built with the same parameters.
  virtual void load(const Archive& in) = 0;
  /// Diagnostics gathered during the last scoring pass (e.g. {"gate/genre": 0.31});
  /// logged after validation as "val_<name>". Reset them when returning them.
  virtual std::map<std::string, double> diagnostics() { return {}; }
};

}  // namespace recrun
