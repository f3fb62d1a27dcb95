// Tests for the seed-layout writer (framework/src/data/seed_layout), `recrun data convert`
// (MovieLens -> seed_tsv) and the data set statistics (framework/src/data/stats).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/dataset_loader.hpp"
#include "data/seed_layout.hpp"
#include "data/stats.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Dataset load(const fs::path& dir, const std::string& source = "auto") {
  return data::load_dataset(test::test_registry(), dir, source,
                            data::LoadOptions{.use_cache = false, .print_warnings = false,
                                              .derive_title_vectors = false})
      .dataset;
}

void write_movielens(const fs::path& dir) {
  fs::create_directories(dir);
  write(dir / "ratings.csv",
        "userId,movieId,rating,timestamp\n"
        "1,10,4.0,300\n1,20,4.0,100\n1,30,4.0,100\n2,20,5.0,50\n2,40,5.0,60\n");
  write(dir / "movies.csv",
        "movieId,title,genres\n"
        "10,\"Odd\tTitle, The (1999)\",Drama\n"
        "20,Plain (2001),Comedy|Drama\n"
        "30,No Year,(no genres listed)\n"
        "40,Late (2010),Horror\n"
        "50,Unrated (2011),Horror\n");
  write(dir / "README.txt", "licence text\n");
}

TEST(SeedLayout, WritesUserGroupedTimeOrderedRows) {
  const auto src = test::temp_dir("w") / "ml";
  write_movielens(src);
  const Dataset d = load(src);
  const auto out = test::temp_dir("w") / "seed";
  const auto report = data::write_seed_layout(d, out);
  EXPECT_EQ(report.files.size(), 4u);  // ratings, genres, years, titles
  EXPECT_TRUE(report.skipped_features.empty());
  EXPECT_EQ(slurp(out / "train_ratings.csv"),
            "user,item,time\n1,20,100\n1,30,100\n1,10,300\n2,20,50\n2,40,60\n");
  EXPECT_EQ(slurp(out / "genres.tsv"), "10\tDrama\n20\tComedy\n20\tDrama\n40\tHorror\n");
  EXPECT_EQ(slurp(out / "years.tsv"), "10\t1999\n20\t2001\n40\t2010\n");
  // A tab inside a title would shift the columns; it becomes a space.
  EXPECT_EQ(slurp(out / "titles.tsv"), "10\tOdd Title, The\n20\tPlain\n30\tNo Year\n40\tLate\n");
  EXPECT_FALSE(fs::exists(out / "directors.tsv"));
}

TEST(SeedLayout, ConvertedMovieLensLoadsAsTheSameData) {
  const auto src = test::temp_dir("c") / "ml";
  write_movielens(src);
  const auto out = test::temp_dir("c") / "seed";
  const auto r = test::run_command(test::recrun_bin() + " data convert --from " +
                                   test::shell_quote(src.string()) + " --to " + test::shell_quote(out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("movie has no ratings"), std::string::npos) << r.output;  // the warning shows
  EXPECT_EQ(slurp(out / "README.txt"), "licence text\n");                      // the licence travels

  const Dataset a = load(src, "movielens");
  const Dataset b = load(out, "seed_tsv");
  ASSERT_EQ(a.num_users(), b.num_users());
  ASSERT_EQ(a.num_interactions(), b.num_interactions());
  for (std::int64_t u = 0; u < a.num_users(); ++u) {
    ASSERT_EQ(a.user_ids[u], b.user_ids[u]);
    std::vector<std::string> sa, sb;
    for (auto i : a.user_items(u)) sa.push_back(a.item_ids[i]);
    for (auto i : b.user_items(u)) sb.push_back(b.item_ids[i]);
    EXPECT_EQ(sa, sb) << "user " << a.user_ids[u];
  }
  for (const auto& id : a.item_ids) {
    const auto ia = *a.find_item(id), ib = *b.find_item(id);
    EXPECT_EQ(a.numeric.at("year").present[ia], b.numeric.at("year").present[ib]) << id;
    EXPECT_EQ(a.numeric.at("year").values[ia], b.numeric.at("year").values[ib]) << id;
    std::vector<std::string> ga, gb;
    for (auto v : a.categorical.at("genre").of(ia)) ga.push_back(a.categorical.at("genre").vocab[v]);
    for (auto v : b.categorical.at("genre").of(ib)) gb.push_back(b.categorical.at("genre").vocab[v]);
    EXPECT_EQ(ga, gb) << id;
  }
  EXPECT_EQ(b.title(*b.find_item("30")), "No Year");

  // Converting again over the result needs --force.
  const auto again = test::run_command(test::recrun_bin() + " data convert --from " +
                                       test::shell_quote(src.string()) + " --to " + test::shell_quote(out.string()));
  EXPECT_NE(again.exit_code, 0);
}

TEST(DataStats, CountsDistributionsAndFeatures) {
  const auto dir = test::temp_dir("s") / "tiny";
  fs::create_directories(dir);
  // user 1: 4 items, user 2: 2 items, user 3: 1 item; item 1 is the most popular.
  write(dir / "train_ratings.csv",
        "user,item,time\n1,1,10\n1,2,20\n1,3,20\n1,4,30\n2,1,5\n2,2,6\n3,1,7\n");
  write(dir / "genres.tsv", "1\tComedy\n2\tComedy\n2\tDrama\n");
  write(dir / "years.tsv", "1\t1990\n4\t2000\n");
  const Dataset d = load(dir);
  const auto s = data::compute_stats(d, 2);
  EXPECT_EQ(s.users, 3);
  EXPECT_EQ(s.items, 4);
  EXPECT_EQ(s.interactions, 7);
  EXPECT_DOUBLE_EQ(s.density, 7.0 / 12.0);
  EXPECT_EQ(s.user_lengths.min, 1);
  EXPECT_EQ(s.user_lengths.median, 2);
  EXPECT_EQ(s.user_lengths.max, 4);
  EXPECT_NEAR(s.user_lengths.mean, 7.0 / 3.0, 1e-12);
  EXPECT_EQ(s.item_counts.max, 3);
  EXPECT_EQ(s.cold_items, 4);
  EXPECT_DOUBLE_EQ(s.tie_share, 1.0 / 4.0);  // 4 consecutive pairs, one tie (20, 20)
  EXPECT_EQ(s.first_time, 5);
  EXPECT_EQ(s.last_time, 30);
  ASSERT_EQ(s.top_items.size(), 2u);
  EXPECT_EQ(std::get<0>(s.top_items[0]), "1");
  EXPECT_EQ(std::get<2>(s.top_items[0]), 3);
  ASSERT_EQ(s.features.size(), 2u);
  EXPECT_EQ(s.features[0].name, "genre");
  EXPECT_EQ(s.features[0].items_covered, 2);
  EXPECT_EQ(s.features[0].size, 2);
  EXPECT_EQ(std::get<0>(s.features[0].top[0]), "Comedy");
  EXPECT_EQ(std::get<1>(s.features[0].top[0]), 2);
  EXPECT_DOUBLE_EQ(std::get<2>(s.features[0].top[0]), 5.0 / 7.0);  // items 1 and 2: 3 + 2 interactions
  EXPECT_EQ(s.features[1].name, "year");
  EXPECT_EQ(s.features[1].items_covered, 2);
  EXPECT_DOUBLE_EQ(s.features[1].mean, 1995.0);
  const std::string text = data::format_stats(d, s);
  EXPECT_NE(text.find("interactions per user"), std::string::npos) << text;
  EXPECT_NE(text.find("sparsity"), std::string::npos) << text;
}

}  // namespace
}  // namespace recrun
