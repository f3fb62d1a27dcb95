// Helpers shared by the suites of the baseline models (itemknn, ials, bpr, gru4rec, lightgcn):
// a data set with planted taste groups, runs under the real trainer, and scoring by user id.
#pragma once

#include <fmt/format.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "../bert4rec/bert4rec_support.hpp"
#include "core/split.hpp"
#include "core/trainer.hpp"
#include "recrun/optim.hpp"

namespace recrun::test {

/// Users stay in one of 6 taste groups of 20 items (90% of their items; the rest anywhere), so
/// an item's group decides what else a user takes, while popularity is nearly flat: a model that
/// learns co-occurrence ranks the held-out item far above popularity.
inline Dataset taste_groups(std::uint64_t seed = 7) {
  GenreChainSpec spec;
  spec.genres = 6;
  spec.items_per_genre = 20;
  spec.users = 300;
  spec.min_len = 8;
  spec.max_len = 16;
  spec.step = 0;
  spec.follow = 0.9;
  spec.seed = seed;
  return genre_chain_dataset(spec);
}

/// Trains `model` with `raw` parameters (the model's and the trainer's) under the real trainer
/// on `split`, 2 threads, seed 3, and returns the outcome (Hit@10 and NDCG@10 on test).
inline core::RunOutcome run_model(const std::string& model,
                                  const std::map<std::string, ParamValue>& raw, const Dataset& d,
                                  const core::Split& split) {
  const auto& info = test_registry().model(model);
  const Params p = resolve_params(recrun::concat(info.params, core::trainer_params()), raw, model);
  core::TrainerOptions opt;
  core::apply_trainer_params(p, opt);
  opt.threads = 2;
  opt.seed = 3;
  opt.eval.ks = {10};
  opt.eval.metrics = {"Hit", "NDCG"};
  core::seed_and_threads(opt.seed, opt.threads);
  auto m = info.make(p, ModelEnv{d, test_registry(), opt.seed});
  core::RunObserver quiet;
  auto outcome = core::train_and_evaluate(*m, d, split, opt, quiet);
  std::cout << fmt::format("{}: Hit@10 {:.3f} NDCG@10 {:.3f}\n", model, outcome.test.at("Hit@10"),
                           outcome.test.at("NDCG@10"));
  return outcome;
}

/// Scores of `users` with their histories in `train`.
inline torch::Tensor score_users(Model& m, const Interactions& train,
                                 const std::vector<std::int64_t>& users) {
  std::vector<std::span<const std::int32_t>> hist;
  for (const auto u : users) hist.push_back(train.items(u));
  torch::NoGradGuard ng;
  return m.score(UserBatch(users, hist, train.num_items()));
}

/// Every user id of `train`.
inline std::vector<std::int64_t> all_users(const Interactions& train) {
  std::vector<std::int64_t> users(static_cast<std::size_t>(train.num_users()));
  for (std::int64_t u = 0; u < train.num_users(); ++u) users[u] = u;
  return users;
}

/// A data set whose users are exactly `rows` (user u's items, oldest first). Dense ids follow
/// first appearance, so rows whose items first appear in id order keep their ids; throws if the
/// rows do not use `items` items.
inline Dataset dataset_of(const std::vector<std::vector<std::int32_t>>& rows, std::int32_t items) {
  DatasetBuilder b;
  for (std::size_t u = 0; u < rows.size(); ++u)
    for (std::size_t t = 0; t < rows[u].size(); ++t)
      b.add_interaction(fmt::format("u{}", u), fmt::format("i{}", rows[u][t]),
                        static_cast<std::int64_t>(t));
  Dataset d = b.build("rows", {}, "rows");
  if (d.num_items() != items) throw std::logic_error("dataset_of: items missing from the rows");
  for (std::int32_t i = 0; i < items; ++i)
    if (d.item_ids[static_cast<std::size_t>(i)] != fmt::format("i{}", i))
      throw std::logic_error("dataset_of: items must first appear in id order");
  return d;
}

}  // namespace recrun::test
