// Tests for the synthetic generator (framework/src/data/synth): determinism, an exact round trip
// through the seed_tsv files, and planted structure that is measurably far above chance.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/dataset_loader.hpp"
#include "data/seed_layout.hpp"
#include "data/synth.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;
using data::SynthOptions;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

SynthOptions small(const std::string& signal = "item") {
  SynthOptions o;
  o.users = 600;
  o.items = 300;
  o.interactions_per_user = 30;
  o.clusters = 6;
  o.seed = 11;
  o.title_dim = 8;
  o.signal = signal;
  return o;
}

// Share of consecutive pairs (a, b) in users' sequences for which pred(a, b) holds.
template <class Pred>
double pair_share(const Dataset& d, Pred pred) {
  std::int64_t hits = 0, pairs = 0;
  for (std::int64_t u = 0; u < d.num_users(); ++u) {
    const auto items = d.user_items(u);
    for (std::size_t k = 1; k < items.size(); ++k, ++pairs) hits += pred(items[k - 1], items[k]) ? 1 : 0;
  }
  return static_cast<double>(hits) / static_cast<double>(pairs);
}

bool shares_value(const CategoricalFeature& f, std::int32_t a, std::int32_t b) {
  for (auto x : f.of(a))
    for (auto y : f.of(b))
      if (x == y) return true;
  return false;
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  const auto a = test::temp_dir("a"), b = test::temp_dir("b"), c = test::temp_dir("c");
  data::write_seed_layout(data::synthesize(small()).dataset, a);
  data::write_seed_layout(data::synthesize(small()).dataset, b);
  auto other = small();
  other.seed = 12;
  data::write_seed_layout(data::synthesize(other).dataset, c);
  for (const char* f : {"train_ratings.csv", "genres.tsv", "directors.tsv", "writers.tsv", "years.tsv",
                        "titles.tsv", "title_embeddings.tsv"}) {
    ASSERT_TRUE(fs::exists(a / f)) << f;
    EXPECT_EQ(slurp(a / f), slurp(b / f)) << f;
  }
  EXPECT_NE(slurp(a / "train_ratings.csv"), slurp(c / "train_ratings.csv"));
}

TEST(Synth, RespectsSizesAndNeverRepeatsAnItemForAUser) {
  const auto o = small();
  const auto r = data::synthesize(o);
  const Dataset& d = r.dataset;
  EXPECT_EQ(d.num_users(), o.users);
  EXPECT_LE(d.num_items(), o.items);
  EXPECT_GT(d.num_items(), o.items * 9 / 10);
  const double mean = static_cast<double>(d.num_interactions()) / static_cast<double>(d.num_users());
  EXPECT_NEAR(mean, o.interactions_per_user, 0.15 * o.interactions_per_user);
  for (std::int64_t u = 0; u < d.num_users(); ++u) {
    const auto items = d.user_items(u);
    EXPECT_GE(static_cast<std::int64_t>(items.size()), o.min_length);
    EXPECT_EQ(std::set<std::int32_t>(items.begin(), items.end()).size(), items.size());
  }
}

TEST(Synth, RoundTripsExactlyThroughTheSeedLayout) {
  const auto r = data::synthesize(small());
  const auto dir = test::temp_dir("rt") / "synthetic";
  data::write_seed_layout(r.dataset, dir);
  const Dataset back = data::load_dataset(test::test_registry(), dir, "seed_tsv",
                                          data::LoadOptions{.use_cache = false})
                           .dataset;
  const Dataset& d = r.dataset;
  EXPECT_EQ(back.user_ids, d.user_ids);
  EXPECT_EQ(back.item_ids, d.item_ids);
  EXPECT_EQ(back.user_offsets, d.user_offsets);
  EXPECT_EQ(back.items, d.items);
  EXPECT_EQ(back.timestamps, d.timestamps);
  EXPECT_EQ(back.titles, d.titles);
  for (const char* f : {"genre", "director", "writer"}) {
    EXPECT_EQ(back.categorical.at(f).vocab, d.categorical.at(f).vocab) << f;
    EXPECT_EQ(back.categorical.at(f).offsets, d.categorical.at(f).offsets) << f;
    EXPECT_EQ(back.categorical.at(f).values, d.categorical.at(f).values) << f;
  }
  EXPECT_EQ(back.numeric.at("year").values, d.numeric.at("year").values);
  EXPECT_EQ(back.dense.at("title").values, d.dense.at("title").values);
  EXPECT_EQ(back.dense.at("title").dim, 8);
}

TEST(Synth, PlantsTasteClusters) {
  const auto o = small();
  const auto r = data::synthesize(o);
  const Dataset& d = r.dataset;
  std::int64_t in_cluster = 0;
  for (std::int64_t u = 0; u < d.num_users(); ++u)
    for (auto i : d.user_items(u)) in_cluster += r.truth.item_cluster[i] == r.truth.user_cluster[u];
  const double share = static_cast<double>(in_cluster) / static_cast<double>(d.num_interactions());
  // Planted: affinity 0.8 plus in-cluster successors, diluted where a user has used up the
  // popular items of their cluster. Chance: 1/6.
  EXPECT_GT(share, 0.55);
  EXPECT_GT(share, 3.0 / static_cast<double>(o.clusters));
}

TEST(Synth, GenresConcentrateWithinClusters) {
  const auto r = data::synthesize(small());
  const Dataset& d = r.dataset;
  const auto& genre = d.categorical.at("genre");
  // Share of item-genre pairs whose genre is one of the item's cluster's home genres.
  std::int64_t home = 0, total = 0;
  for (std::int64_t i = 0; i < d.num_items(); ++i)
    for (auto g : genre.of(i)) {
      const auto& pool = r.truth.cluster_genres[r.truth.item_cluster[i]];
      home += std::find(pool.begin(), pool.end(), g) != pool.end();
      ++total;
    }
  const double share = static_cast<double>(home) / static_cast<double>(total);
  const double chance = static_cast<double>(r.truth.cluster_genres[0].size()) / static_cast<double>(genre.vocab_size());
  EXPECT_GT(share, 0.75);
  EXPECT_GT(share, 5 * chance);
  // Measured from the data alone: a cluster's single most common genre covers far more of its
  // items than the average genre does.
  std::map<std::int32_t, std::map<std::int32_t, int>> counts;
  std::map<std::int32_t, int> sizes;
  for (std::int64_t i = 0; i < d.num_items(); ++i) {
    ++sizes[r.truth.item_cluster[i]];
    for (auto g : genre.of(i)) ++counts[r.truth.item_cluster[i]][g];
  }
  for (const auto& [c, by_genre] : counts) {
    int best = 0;
    for (const auto& [g, n] : by_genre) best = std::max(best, n);
    EXPECT_GT(static_cast<double>(best) / sizes[c], 0.4) << "cluster " << c;
  }
}

TEST(Synth, PlantsMarkovSuccessors) {
  const auto o = small("item");
  const auto r = data::synthesize(o);
  const Dataset& d = r.dataset;
  const double share = pair_share(d, [&](auto a, auto b) { return r.truth.successor[a] == b; });
  EXPECT_GT(share, 0.3);  // planted: ~sequential (0.5) minus steps whose successor was already seen
  EXPECT_GT(share, 50.0 / static_cast<double>(d.num_items()));
  // Without the signal, successors are as rare as chance allows.
  auto none = o;
  none.signal = "none";
  const auto rn = data::synthesize(none);
  EXPECT_LT(pair_share(rn.dataset, [&](auto a, auto b) { return rn.truth.successor[a] == b; }), 0.05);
}

TEST(Synth, FeatureSignalsDriveTheNextItem) {
  // director: the next item shares the previous one's director far more often than with "item".
  const auto by_director = data::synthesize(small("director"));
  const auto by_item = data::synthesize(small("item"));
  const auto same_director = [](const Dataset& d) {
    const auto& f = d.categorical.at("director");
    return pair_share(d, [&](auto a, auto b) { return shares_value(f, a, b); });
  };
  // At most `sequential` (0.5) of the steps, less where the director's few films are used up.
  EXPECT_GT(same_director(by_director.dataset), 0.25);
  EXPECT_GT(same_director(by_director.dataset), 3 * same_director(by_item.dataset));

  // genre: the next item has the genre that follows the previous item's first genre.
  const auto by_genre = data::synthesize(small("genre"));
  const auto follows = [](const data::SynthResult& r) {
    const auto& f = r.dataset.categorical.at("genre");
    return pair_share(r.dataset, [&](auto a, auto b) {
      const auto next = r.truth.genre_successor[f.of(a)[0]];
      const auto gb = f.of(b);
      return std::find(gb.begin(), gb.end(), next) != gb.end();
    });
  };
  EXPECT_GT(follows(by_genre), 0.45);
  EXPECT_GT(follows(by_genre), 2.5 * follows(by_item));
}

TEST(Synth, RejectsBadOptions) {
  auto o = small();
  o.signal = "plot";
  EXPECT_THROW(data::synthesize(o), ParamError);
  o = small();
  o.sequential = 1.5;
  EXPECT_THROW(data::validate(o), ParamError);
  o = small();
  o.min_length = o.items;
  EXPECT_THROW(data::validate(o), ParamError);
}

TEST(SynthCli, WritesTheSameBytesTwiceAndLoads) {
  const auto a = test::temp_dir("cli") / "one", b = test::temp_dir("cli") / "two";
  const std::string flags = " --users 50 --items 40 --interactions-per-user 8 --clusters 3 --seed 5 --title-dim 4";
  for (const auto& dir : {a, b}) {
    const auto r = test::run_command(test::recrun_bin() + " data synth --out " + test::shell_quote(dir.string()) + flags);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  for (const char* f : {"train_ratings.csv", "genres.tsv", "title_embeddings.tsv", "README.txt"})
    EXPECT_EQ(slurp(a / f), slurp(b / f)) << f;
  // A second run into the same directory refuses to overwrite without --force.
  const auto again = test::run_command(test::recrun_bin() + " data synth --out " + test::shell_quote(a.string()) + flags);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
  const auto stats = test::run_command(test::recrun_bin() + " data stats " + test::shell_quote(a.string()));
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  const auto line_start = stats.output.find("\nusers ");
  ASSERT_NE(line_start, std::string::npos) << stats.output;
  const auto line = stats.output.substr(line_start + 1, stats.output.find('\n', line_start + 1) - line_start - 1);
  EXPECT_TRUE(line.ends_with(" 50")) << line;
  EXPECT_NE(stats.output.find("genre"), std::string::npos) << stats.output;
}

}  // namespace
}  // namespace recrun
