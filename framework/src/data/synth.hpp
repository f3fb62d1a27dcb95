// The synthetic data generator behind `recrun data synth`: interaction sequences and item
// metadata with planted, measurable structure, so that tests and model comparisons have data
// whose right answers are known.
//
// What is planted (each with its own knob):
//   taste clusters   every user and item belongs to one of `clusters` clusters; a step that does
//                    not follow the sequential signal stays in the user's cluster with
//                    probability `affinity` (else it is a draw from global popularity)
//   sequential signal  with probability `sequential`, the next item follows from the previous one:
//                    item      the previous item's planted successor (a Markov chain over items)
//                    genre     an item having the genre that follows the previous item's first
//                              genre in a planted genre chain (a Markov chain over genres)
//                    director  another item by the previous item's director
//                    writer    another item by one of the previous item's writers
//                    none      no sequential signal: only clusters and popularity
//   metadata         genres, directors and writers are drawn from the item's cluster's own pool
//                    with probability `purity`, else from all values; release years centre on a
//                    per-cluster era; titles mix the cluster's theme words with common words;
//                    optional title embeddings are the cluster centroid plus noise
//   popularity       Zipf with exponent `popularity` within each cluster
// The same options give the same data set, bit for bit (arithmetic-only random draws).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"

namespace recrun::data {

/// Generator settings; `recrun data synth --help` lists them as flags.
struct SynthOptions {
  /// Number of users.
  std::int64_t users = 1000;
  /// Number of items in the catalogue (items nobody picks are left out of the data set).
  std::int64_t items = 500;
  /// Mean interactions per user (lengths are spread between min_length and ~4x the mean).
  double interactions_per_user = 40;
  /// Shortest user sequence.
  std::int64_t min_length = 5;
  /// Number of taste clusters.
  std::int64_t clusters = 8;
  /// Random seed.
  std::uint64_t seed = 1;
  /// Number of genres (the first 24 get real genre names).
  std::int64_t genres = 18;
  /// Number of directors (0: items / 4).
  std::int64_t directors = 0;
  /// Number of writers (0: items / 3).
  std::int64_t writers = 0;
  /// Length of title embeddings (0: no title_embeddings.tsv).
  std::int64_t title_dim = 0;
  /// What drives the next item: "item", "genre", "director", "writer" or "none".
  std::string signal = "item";
  /// Probability that a step follows the sequential signal.
  double sequential = 0.5;
  /// Probability that any other step stays in the user's cluster.
  double affinity = 0.8;
  /// Probability that a genre, director or writer comes from the item's cluster's pool.
  double purity = 0.85;
  /// Zipf exponent of item popularity within a cluster (0: uniform).
  double popularity = 0.8;
  /// Probability that an interaction has the same timestamp as the one before it.
  double tie_rate = 0.02;
};

/// Throws ParamError naming the first invalid option and its valid range.
void validate(const SynthOptions& options);

/// The planted structure, in the data set's dense ids, for tests and analysis.
struct SynthTruth {
  /// Cluster of each user.
  std::vector<std::int32_t> user_cluster;
  /// Cluster of each item.
  std::vector<std::int32_t> item_cluster;
  /// Planted successor of each item (signal "item"); -1 when the successor is not in the data.
  std::vector<std::int32_t> successor;
  /// Genre that follows each genre (signal "genre"), as ids into categorical["genre"].vocab.
  std::vector<std::int32_t> genre_successor;
  /// The genres each cluster draws from, as ids into categorical["genre"].vocab.
  std::vector<std::vector<std::int32_t>> cluster_genres;
};

/// A generated data set and what was planted in it.
struct SynthResult {
  /// The data set (name "synthetic"), built exactly as the seed_tsv source would load its files.
  Dataset dataset;
  /// The planted structure.
  SynthTruth truth;
};

/// Generates a data set. Validates the options first.
SynthResult synthesize(const SynthOptions& options);

/// A README for a generated directory: what it is and the options that reproduce it.
std::string synth_readme(const SynthOptions& options);

}  // namespace recrun::data
