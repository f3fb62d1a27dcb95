// Writes a Dataset in the seed_tsv layout (the format the seed_tsv data source reads), for
// `recrun data convert` and `recrun data synth`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"

namespace recrun::data {

/// What write_seed_layout wrote.
struct SeedLayoutReport {
  /// Files written, in order.
  std::vector<std::filesystem::path> files;
  /// Features the layout has no file for (e.g. a numeric feature other than "year"); not written.
  std::vector<std::string> skipped_features;
};

/// Writes `dataset` into `dir` (created if needed):
///   train_ratings.csv     "user,item,time" then one row per interaction, user by user in each
///                         user's time order, so that reading it back gives the same sequences
///   genres.tsv, directors.tsv, writers.tsv   item<TAB>value, one row per value
///   years.tsv             item<TAB>year
///   titles.tsv            item<TAB>title (tabs and line breaks in titles become spaces)
///   title_embeddings.tsv  item<TAB>space-separated floats (shortest round-trip text)
/// Only files whose feature is present are written. The output depends only on the data set, so
/// equal data sets give identical bytes. Throws Error when a file cannot be written.
SeedLayoutReport write_seed_layout(const Dataset& dataset, const std::filesystem::path& dir);

/// Writes one dense feature as title_embeddings.tsv (item<TAB>space-separated floats), rows of
/// items with a vector only, in dense id order. Atomic: written to a temporary file beside
/// `path` and renamed over it, so on any error the previous file (or none) stays. Throws Error
/// when `path` exists and is not a regular file (a symlink is written through).
void write_title_embeddings(const std::vector<std::string>& item_ids, const DenseFeature& feature,
                            const std::filesystem::path& path);

}  // namespace recrun::data
