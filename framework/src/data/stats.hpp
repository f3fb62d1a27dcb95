// Descriptive statistics of a Dataset, for `recrun data stats` (a small data explorer) and the
// load benchmark.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"

namespace recrun::data {

/// Order statistics of a count distribution.
struct Distribution {
  std::int64_t min = 0, p10 = 0, p25 = 0, median = 0, p75 = 0, p90 = 0, max = 0;
  double mean = 0;
  /// Histogram: (lower bound of the bin, number of entries); bins 1, 2-4, 5-9, 10-19, 20-49, ...
  std::vector<std::pair<std::int64_t, std::int64_t>> histogram;
};

/// One feature's coverage and most common values.
struct FeatureStats {
  /// Feature name ("genre", "year", ...).
  std::string name;
  /// "categorical", "numeric", "dense" or "text".
  std::string kind;
  /// Items that have a value.
  std::int64_t items_covered = 0;
  /// Distinct values (categorical) or vector length (dense).
  std::int64_t size = 0;
  /// Mean number of values per covered item (categorical).
  double values_per_item = 0;
  /// Range and mean (numeric).
  double min = 0, max = 0, mean = 0;
  /// Most common values: (value, items having it, share of interactions on those items).
  std::vector<std::tuple<std::string, std::int64_t, double>> top;
};

/// Statistics of a data set.
struct DataStats {
  std::int64_t users = 0, items = 0, interactions = 0;
  /// Distinct (user, item) pairs / (users * items): repeats do not count twice.
  double density = 0;
  /// Interactions per user.
  Distribution user_lengths;
  /// Interactions per item.
  Distribution item_counts;
  /// Gini coefficient of item popularity (0: uniform, 1: one item has everything).
  double item_gini = 0;
  /// Share of interactions on the most popular 1% and 10% of items.
  double top1_share = 0, top10_share = 0;
  /// Items with fewer than 5 interactions.
  std::int64_t cold_items = 0;
  /// Earliest and latest timestamp.
  std::int64_t first_time = 0, last_time = 0;
  /// Share of consecutive interactions of a user with the same timestamp (order decided by the file).
  double tie_share = 0;
  /// Share of interactions that repeat an item the user already had.
  double repeat_share = 0;
  /// Most interacted-with items: (original id, title, interactions).
  std::vector<std::tuple<std::string, std::string, std::int64_t>> top_items;
  /// Every feature present.
  std::vector<FeatureStats> features;
};

/// What the data explorer page (`recrun data stats --html`) shows beyond DataStats.
struct ExplorerStats {
  /// Interactions over time: (start of the bin, Unix seconds; interactions in it). Bins are
  /// calendar days, months or years (UTC), whichever gives at most 400 bins.
  std::vector<std::pair<std::int64_t, std::int64_t>> timeline;
  /// "day", "month" or "year".
  std::string timeline_unit;
  /// Lorenz curve of item popularity: (share of items, share of interactions) with items from
  /// the least to the most popular; (0, 0) first, (1, 1) last, at most 201 points.
  std::vector<std::pair<double, double>> lorenz;
  /// Share of interactions on the long tail: the items outside the most popular 20%.
  double long_tail_share = 0;
  /// Users with fewer than 5 interactions; items with none at all.
  std::int64_t cold_users = 0, items_without_interactions = 0;
  /// Leave-one-out with min_interactions (the protocol's default, 3): users and interactions
  /// dropped with them, interactions held out as validation and test targets, what is left to
  /// train on, and the items that have interactions but none left for training.
  std::int64_t loo_min_interactions = 3;
  std::int64_t loo_dropped_users = 0, loo_dropped_interactions = 0, loo_held_out = 0;
  std::int64_t loo_train_interactions = 0, loo_items_without_training = 0;
  /// Every value of each categorical feature: (value, items having it), most common first.
  std::map<std::string, std::vector<std::pair<std::string, std::int64_t>>> values;
};

/// Computes the explorer's statistics (one pass over the interactions plus the split).
ExplorerStats compute_explorer_stats(const Dataset& dataset, std::int64_t min_interactions = 3);

/// Computes the statistics; `top` bounds the top-items and top-values lists.
DataStats compute_stats(const Dataset& dataset, std::int64_t top = 10);

/// Renders statistics as an aligned text report.
std::string format_stats(const Dataset& dataset, const DataStats& stats);

}  // namespace recrun::data
