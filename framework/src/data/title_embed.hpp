// Title embeddings computed from the titles' text, for the `title` feature: `recrun data
// embed-titles` and `recrun data convert --title-dim`.
//
// The seed study used Sentence-BERT vectors, which need a pretrained network and its weights.
// recrun computes latent semantic vectors from the titles alone, offline and deterministically:
//
//   1. each title (with a trailing "(1995)" release year removed) becomes a bag of terms hashed with
//      core::hash64 (XXH3-64):
//      lower-cased word unigrams, word bigrams, and character 3-grams of each word with
//      boundary marks ("<to", "toy", "oy>"), so that "Toy Story" and "Toy Story 2" share most
//      terms and spelling variants share some;
//   2. TF-IDF weights (sublinear tf = 1 + log tf, idf = log((1 + n) / (1 + df)) + 1), each row
//      L2-normalised;
//   3. a rank-`dim` truncated SVD of that sparse items x terms matrix by randomized subspace
//      iteration (Halko, Martinsson and Tropp 2011): the item vectors are U * S, L2-normalised.
//
// Titles that share words or word stems get close vectors (cosine similarity), which is what the
// `title` feature needs to pass on between items; it is not a language model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recrun/dataset.hpp"

namespace recrun::data {

struct TitleEmbedOptions {
  /// Vector length.
  std::int64_t dim = 64;
  /// Hash buckets for the terms (a power of two is not required).
  std::int64_t buckets = 1 << 16;
  /// Extra random directions and subspace iterations of the randomized SVD.
  std::int64_t oversample = 16;
  std::int64_t power_iterations = 3;
  /// Seed of the random projection: same titles and seed, same vectors (same machine).
  std::uint64_t seed = 1;
};

/// Result: the vectors as the data set's dense `title` feature holds them (one row of `dim`
/// floats per title; rows of empty titles are zero with `present` 0).
struct TitleEmbeddings {
  DenseFeature feature;
  /// Share of the TF-IDF matrix's squared Frobenius norm that the `dim` components keep.
  double explained = 0;
};

/// The terms of one title (before hashing), in order; exposed for tests and docs.
std::vector<std::string> title_terms(const std::string& title);

/// Embeds every title. Throws recrun::Error when options are invalid or no title has a term;
/// `dim` is clipped to what the titles can give (at most the number of non-empty titles).
TitleEmbeddings embed_titles(const std::vector<std::string>& titles, const TitleEmbedOptions& options);

}  // namespace recrun::data
