// Top-K recommendation lists from a trained model: what `recrun predict` writes.
//
// Each user is scored on their whole history (every interaction in the data: a model trained on
// a leave-one-out split also sees its validation and test items here), seen items are excluded,
// and optionally items released after the year of the user's last interaction (the seed
// study's future filter). Ties order by the smaller item id, as the evaluator ranks them.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"
#include "recrun/model_interface.hpp"

namespace recrun::predict {

/// What to predict.
struct TopKOptions {
  /// List length.
  std::int64_t k = 10;
  /// Users per scoring call.
  std::int64_t batch_size = 512;
  /// Exclude items whose release year is after the year of the user's last interaction.
  bool exclude_future = false;
  /// Called after each batch with users done so far (progress); optional.
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

/// One user's list: dense item ids and scores, best first.
struct UserList {
  std::int64_t user = 0;
  std::vector<std::int32_t> items;
  std::vector<float> scores;
};

/// Whether the data set can support the future filter: it has a "year" feature and real
/// (not all-zero) timestamps.
bool has_release_years(const Dataset& dataset);

/// Calendar year (UTC) of a Unix timestamp in seconds.
int year_of(std::int64_t unix_seconds);

/// Scores `users` (dense ids) and returns their top-K lists, in the order given. Throws Error
/// for scores of the wrong shape or NaN, and ParamError for k < 1 or batch_size < 1.
std::vector<UserList> top_k(Model& model, const Dataset& dataset,
                            const std::vector<std::int64_t>& users, const TopKOptions& options);

/// Output formats.
enum class Format { csv, jsonl };

/// Writes lists with the data set's original ids. csv: a header `user,item,rank,score` and one
/// row per recommendation (ids quoted when they hold a comma, quote or newline); jsonl: one
/// object per user, {"user": ID, "items": [...], "scores": [...]}. Ranks are 1-based.
void write_lists(std::ostream& out, const Dataset& dataset, const std::vector<UserList>& lists,
                 Format format);

}  // namespace recrun::predict
