// Title embeddings from text: terms, TF-IDF + randomized SVD, and `recrun data embed-titles` /
// `recrun data convert` writing vectors the seed_tsv source reads back as the `title` feature.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "data/dataset_loader.hpp"
#include "data/title_embed.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;
using data::embed_titles;
using data::TitleEmbedOptions;

double cosine(const data::TitleEmbeddings& e, std::size_t a, std::size_t b) {
  double dot = 0, na = 0, nb = 0;
  for (std::int64_t k = 0; k < e.feature.dim; ++k) {
    const double x = e.feature.values[a * e.feature.dim + k], y = e.feature.values[b * e.feature.dim + k];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / std::sqrt(na * nb);
}

// Real-looking titles (MovieLens style, year in brackets) among random filler titles.
std::vector<std::string> catalogue() {
  std::vector<std::string> t = {
      "Toy Story (1995)",
      "Toy Story 2 (1999)",
      "Toy Story 3 (2010)",
      "Star Wars: Episode IV - A New Hope (1977)",
      "Star Wars: Episode V - The Empire Strikes Back (1980)",
      "Star Wars: Episode VI - Return of the Jedi (1983)",
      "Heat (1995)",
      "Jumanji (1995)",
      "",  // an item without a title
  };
  const std::vector<std::string> words = {
      "night", "river", "house", "blue",  "war",    "love",  "city",  "dark",  "king",   "summer",
      "girl",  "man",   "last",  "road",  "dead",   "black", "sea",   "fire",  "golden", "secret",
      "lost",  "home",  "time",  "stone", "winter", "heart", "queen", "ghost", "little", "wild"};
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> pick(0, words.size() - 1);
  for (int i = 0; i < 300; ++i)
    t.push_back(fmt::format("{} {} ({})", words[pick(rng)], words[pick(rng)], 1950 + i % 60));
  return t;
}

TEST(TitleEmbed, TermsAreWordsBigramsAndCharacterTrigramsWithoutTheYear) {
  const auto terms = data::title_terms("Toy Story (1995)");
  const auto has = [&](const std::string& t) {
    return std::find(terms.begin(), terms.end(), t) != terms.end();
  };
  EXPECT_TRUE(has("w:toy"));
  EXPECT_TRUE(has("w:story"));
  EXPECT_TRUE(has("b:toy story"));
  EXPECT_TRUE(has("c:<to"));
  EXPECT_TRUE(has("c:ry>"));
  EXPECT_FALSE(has("w:1995"));
  // 2 words, 1 bigram, 3 + 5 trigrams of "<toy>" and "<story>".
  EXPECT_EQ(terms.size(), 2u + 1u + 3u + 5u);
  // A number that is part of the title stays; only a trailing (year) goes.
  const auto sequel = data::title_terms("Toy Story 2 (1999)");
  EXPECT_NE(std::find(sequel.begin(), sequel.end(), "w:2"), sequel.end());
  const auto orwell = data::title_terms("1984 (1956)");
  EXPECT_NE(std::find(orwell.begin(), orwell.end(), "w:1984"), orwell.end());
  EXPECT_TRUE(data::title_terms("  ").empty());
}

TEST(TitleEmbed, SimilarTitlesGetCloseUnitVectors) {
  const auto titles = catalogue();
  TitleEmbedOptions o;
  o.dim = 32;
  const auto e = embed_titles(titles, o);
  ASSERT_EQ(e.feature.dim, 32);
  ASSERT_EQ(e.feature.values.size(), titles.size() * 32);
  EXPECT_GT(e.explained, 0.0);
  EXPECT_LE(e.explained, 1.0 + 1e-9);
  for (std::size_t i = 0; i < titles.size(); ++i) {
    if (titles[i].empty()) continue;
    double norm = 0;
    for (std::int64_t k = 0; k < e.feature.dim; ++k) norm += e.feature.values[i * e.feature.dim + k] * e.feature.values[i * e.feature.dim + k];
    EXPECT_NEAR(norm, 1.0, 1e-4) << titles[i];
  }
  // The sequels are each other's nearest neighbours; unrelated titles are far.
  for (std::size_t a : {0u, 1u, 2u}) {
    std::size_t best = a == 0 ? 1 : 0;
    for (std::size_t b = 0; b < titles.size(); ++b)
      if (b != a && !titles[b].empty() && cosine(e, a, b) > cosine(e, a, best)) best = b;
    EXPECT_LE(best, 2u) << titles[a] << " is closest to " << titles[best];
  }
  EXPECT_GT(cosine(e, 0, 1), 0.8);
  EXPECT_GT(cosine(e, 3, 4), 0.6);                      // Star Wars IV / V
  EXPECT_GT(cosine(e, 0, 1), cosine(e, 0, 6) + 0.5);    // Toy Story: sequel vs Heat
  EXPECT_GT(cosine(e, 3, 5), cosine(e, 3, 7) + 0.4);    // Star Wars IV: VI vs Jumanji
}

TEST(TitleEmbed, EmptyTitlesAreAbsentAndTheResultIsDeterministic) {
  const auto titles = catalogue();
  TitleEmbedOptions o;
  o.dim = 16;
  const auto a = embed_titles(titles, o);
  const auto b = embed_titles(titles, o);
  EXPECT_EQ(a.feature.values, b.feature.values);  // bit for bit
  EXPECT_EQ(a.feature.present[8], 0);
  for (std::int64_t k = 0; k < a.feature.dim; ++k) EXPECT_EQ(a.feature.values[8 * a.feature.dim + k], 0.0f);
  EXPECT_EQ(std::count(a.feature.present.begin(), a.feature.present.end(), 1), static_cast<long>(titles.size() - 1));
  o.seed = 2;
  const auto c = embed_titles(titles, o);
  // Another projection seed finds the same subspace: similarities barely move.
  EXPECT_NEAR(cosine(a, 0, 1), cosine(c, 0, 1), 0.05);
}

TEST(TitleEmbed, DimensionIsClippedToWhatTheTitlesGiveAndBadInputIsRefused) {
  const auto e = embed_titles({"Heat (1995)", "Jumanji (1995)", "Heat 2 (2020)"}, TitleEmbedOptions{});
  EXPECT_EQ(e.feature.dim, 3);
  EXPECT_GT(cosine(e, 0, 2), cosine(e, 0, 1));
  EXPECT_THROW(embed_titles({"", " "}, TitleEmbedOptions{}), Error);
  TitleEmbedOptions bad;
  bad.dim = 0;
  EXPECT_THROW(embed_titles({"Heat"}, bad), Error);
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(TitleEmbedCli, ConvertAndEmbedTitlesWriteVectorsTheSeedSourceReads) {
  const fs::path dir = test::temp_dir("title-embed");
  const fs::path ml = dir / "ml";
  fs::create_directories(ml);
  std::string movies = "movieId,title,genres\n";
  std::string ratings = "userId,movieId,rating,timestamp\n";
  const auto titles = catalogue();
  for (std::size_t i = 0; i < 40; ++i)
    if (!titles[i].empty())
      movies += fmt::format("{},\"{}\",Drama\n", i + 1, titles[i]);
  for (int u = 1; u <= 20; ++u)
    for (int k = 0; k < 6; ++k) ratings += fmt::format("{},{},4.0,{}\n", u, 1 + (u * 7 + k * 3) % 40, 1000 + k);
  write(ml / "movies.csv", movies);
  write(ml / "ratings.csv", ratings);

  const fs::path seed = dir / "seed";
  const auto conv = test::run_command(fmt::format(
      "{} data convert --from {} --to {} --title-dim 8 --plugin-dir {} 2>&1", test::recrun_bin(),
      test::shell_quote(ml.string()), test::shell_quote(seed.string()),
      test::shell_quote(test::plugin_dir().string())));
  ASSERT_EQ(conv.exit_code, 0) << conv.output;
  EXPECT_NE(conv.output.find("title embeddings:"), std::string::npos) << conv.output;
  ASSERT_TRUE(fs::exists(seed / "title_embeddings.tsv")) << conv.output;

  auto loaded = data::load_dataset(test::test_registry(), seed, "seed_tsv", data::LoadOptions{});
  ASSERT_TRUE(loaded.dataset.dense.count("title"));
  const auto& f = loaded.dataset.dense.at("title");
  EXPECT_EQ(f.dim, 8);
  const auto toy = loaded.dataset.find_item("1"), toy2 = loaded.dataset.find_item("2"),
             heat = loaded.dataset.find_item("7");
  ASSERT_TRUE(toy && toy2 && heat);
  const auto cos = [&](std::int32_t a, std::int32_t b) {
    double d = 0;
    for (std::int64_t k = 0; k < 8; ++k) d += f.values[a * 8 + k] * f.values[b * 8 + k];
    return d;  // unit vectors (to the 6 digits written)
  };
  EXPECT_GT(cos(*toy, *toy2), cos(*toy, *heat) + 0.3);

  // embed-titles refuses to overwrite, then rewrites with another length when forced.
  const auto again = test::run_command(fmt::format(
      "{} data embed-titles {} --dim 4 --plugin-dir {} 2>&1", test::recrun_bin(),
      test::shell_quote(seed.string()), test::shell_quote(test::plugin_dir().string())));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  const auto forced = test::run_command(fmt::format(
      "{} data embed-titles {} --dim 4 --force --plugin-dir {} 2>&1", test::recrun_bin(),
      test::shell_quote(seed.string()), test::shell_quote(test::plugin_dir().string())));
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  loaded = data::load_dataset(test::test_registry(), seed, "seed_tsv", data::LoadOptions{});
  EXPECT_EQ(loaded.dataset.dense.at("title").dim, 4);  // the cache noticed the new file

  // A data set without titles gets an error naming it.
  fs::remove(seed / "titles.tsv");
  const auto none = test::run_command(fmt::format(
      "{} data embed-titles {} --out {} --plugin-dir {} 2>&1", test::recrun_bin(),
      test::shell_quote(seed.string()), test::shell_quote((dir / "x.tsv").string()),
      test::shell_quote(test::plugin_dir().string())));
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.output.find("has no titles"), std::string::npos) << none.output;
}

TEST(TitleEmbedLoad, AMovieLensDirectoryGetsTitleVectorsAtLoadAndTheCacheKeepsThem) {
  // gate_fusion.toml crosses the `title` feature on MovieLens as it stands: the vectors must
  // come with the load, with no conversion step.
  const fs::path ml = test::temp_dir("ml-titles");
  std::string movies = "movieId,title,genres\n", ratings = "userId,movieId,rating,timestamp\n";
  const auto titles = catalogue();
  for (std::size_t i = 0; i < 40; ++i)
    movies += fmt::format("{},\"{}\",Drama\n", i + 1, titles[i].empty() ? "x" : titles[i]);
  for (int u = 1; u <= 20; ++u)
    for (int k = 0; k < 6; ++k)
      ratings += fmt::format("{},{},4.0,{}\n", u, 1 + (u * 7 + k * 3) % 40, 1000 + k);
  write(ml / "movies.csv", movies);
  write(ml / "ratings.csv", ratings);
  const auto first = data::load_dataset(test::test_registry(), ml, "movielens",
                                        data::LoadOptions{.print_warnings = false});
  EXPECT_FALSE(first.from_cache);
  ASSERT_TRUE(first.dataset.dense.count("title"));
  const auto& f = first.dataset.dense.at("title");
  EXPECT_GT(f.dim, 8);
  const auto toy = first.dataset.find_item("1"), toy2 = first.dataset.find_item("2"),
             heat = first.dataset.find_item("7");
  ASSERT_TRUE(toy && toy2 && heat);
  const auto cos = [&](std::int32_t a, std::int32_t b) {
    double d = 0;
    for (std::int64_t k = 0; k < f.dim; ++k) d += f.values[a * f.dim + k] * f.values[b * f.dim + k];
    return d;
  };
  EXPECT_GT(cos(*toy, *toy2), cos(*toy, *heat) + 0.3);
  const auto again = data::load_dataset(test::test_registry(), ml, "movielens",
                                        data::LoadOptions{.print_warnings = false});
  EXPECT_TRUE(again.from_cache);
  ASSERT_TRUE(again.dataset.dense.count("title"));
  EXPECT_EQ(again.dataset.dense.at("title").values, f.values);
  // Converters see only the source's own features.
  const auto raw = data::load_dataset(
      test::test_registry(), ml, "movielens",
      data::LoadOptions{.print_warnings = false, .derive_title_vectors = false});
  EXPECT_FALSE(raw.dataset.dense.count("title"));
}

TEST(TitleEmbedLoad, GateFusionDryRunsOnTheBundledDataAsItStands) {
  const fs::path dir = test::temp_dir("gate-dry");
  const auto r = test::run_command(fmt::format(
      "cd {} && {} sweep {}/experiments/gate_fusion.toml --dry-run --results {} 2>&1",
      test::shell_quote(dir.string()), test::recrun_bin(), RECRUN_SOURCE_DIR,
      test::shell_quote((dir / "results").string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("13 trials"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace recrun
