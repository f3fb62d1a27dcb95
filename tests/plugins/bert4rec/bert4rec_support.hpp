// Helpers for the BERT4Rec, feature and fusion suites: small synthetic data sets and models built
// through the real plugins.
#pragma once

#include <fmt/format.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "recrun/dataset.hpp"
#include "recrun/model.hpp"
#include "recrun/params.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun::test {

/// Shape of a synthetic data set in which an item's genre decides the next item's genre.
struct GenreChainSpec {
  /// Genres; each has `items_per_genre` items.
  int genres = 8;
  /// Items per genre: many, so that item-to-item co-occurrence alone is sparse.
  int items_per_genre = 40;
  /// Users.
  int users = 600;
  /// History length range (inclusive).
  int min_len = 12, max_len = 24;
  /// Probability that the next genre is (genre + step) % genres rather than a random one.
  double follow = 0.9;
  /// 0: users stay in a genre for a while; 1: they walk the genres in order.
  int step = 0;
  /// Seed of the generator.
  std::uint64_t seed = 7;
};

/// The next item is drawn uniformly from the current item's genre (step 0) or the genre after it
/// (step 1), with probability `follow`, else from a random genre. Every item has a genre (the
/// signal) and a year drawn at random (noise); items are introduced in a shuffled order so dense
/// ids carry no genre information.
inline Dataset genre_chain_dataset(const GenreChainSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  const int num_items = spec.genres * spec.items_per_genre;
  std::uniform_int_distribution<int> any_genre(0, spec.genres - 1);
  std::uniform_int_distribution<int> in_genre(0, spec.items_per_genre - 1);
  std::uniform_int_distribution<int> length(spec.min_len, spec.max_len);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  DatasetBuilder b;
  // Introduce every item once, in shuffled order, through a throwaway user so dense ids are
  // independent of genre and every item exists even if nobody else picks it.
  std::vector<int> order(num_items);
  for (int i = 0; i < num_items; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (int k = 0; k < num_items; ++k) b.add_interaction("seed-user", fmt::format("i{}", order[k]), k);
  for (int u = 0; u < spec.users; ++u) {
    const std::string user = fmt::format("u{}", u);
    int genre = any_genre(rng);
    const int n = length(rng);
    for (int t = 0; t < n; ++t) {
      const int item = genre * spec.items_per_genre + in_genre(rng);
      b.add_interaction(user, fmt::format("i{}", item), t);
      genre = coin(rng) < spec.follow ? (genre + spec.step) % spec.genres : any_genre(rng);
    }
  }
  std::uniform_real_distribution<double> year(1950, 2010);
  for (int i = 0; i < num_items; ++i) {
    const std::int32_t id = *b.item_id(fmt::format("i{}", i));
    b.add_category("genre", id, fmt::format("g{}", i / spec.items_per_genre));
    b.set_numeric("year", id, static_cast<float>(std::floor(year(rng))));
  }
  return b.build("genre-chain", {}, fmt::format("genre-chain-{}", spec.seed));
}

/// Builds a model plugin by name with `raw` parameters (validated like an experiment file).
inline std::unique_ptr<Model> make_model(const std::string& name, const Dataset& dataset,
                                         const std::map<std::string, ParamValue>& raw,
                                         std::uint64_t seed = 1) {
  const Registry& registry = test_registry();
  const ModelInfo& info = registry.model(name);
  torch::manual_seed(seed);
  const Params params = resolve_params(info.params, raw, fmt::format("model '{}'", name));
  return info.make(params, ModelEnv{.dataset = dataset, .registry = registry, .seed = seed});
}

}  // namespace recrun::test
