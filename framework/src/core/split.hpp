// The evaluation protocol's split: every model is measured on the same one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/protocol.hpp"
#include "recrun/dataset.hpp"
#include "recrun/model_interface.hpp"

namespace recrun::core {

/// How to split.
struct SplitOptions {
  /// leave_one_out (last item = test, second-to-last = validation) or full (train on all).
  SplitMode mode = SplitMode::leave_one_out;
  /// Users with fewer interactions are dropped; at least 3 for leave_one_out.
  std::int64_t min_interactions = 3;
};

/// The split of a Dataset. Users are the data set's dense ids; dropped users have empty rows.
struct Split {
  /// Training histories: everything but the last two items (all items in full mode).
  Interactions train;
  /// Test-time histories: train + the validation target.
  Interactions train_valid;
  /// Users evaluated, ascending.
  std::vector<std::int64_t> eval_users;
  /// Validation target of each eval user (second-to-last item).
  std::vector<std::int32_t> valid_targets;
  /// Test target of each eval user (last item).
  std::vector<std::int32_t> test_targets;
  /// Users dropped for having too few interactions.
  std::int64_t dropped_users = 0;
  /// Options it was made with.
  SplitOptions options;
};

/// Splits a data set. The dataset's per-user rows are already stably time-sorted (file order
/// breaks ties). Throws ParamError for invalid options.
Split make_split(const Dataset& dataset, const SplitOptions& options);

}  // namespace recrun::core
