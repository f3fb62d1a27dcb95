// Tests for the movielens data source: ml-latest CSVs (quoted titles), the ml-1m '::' format
// (latin-1 titles), years from titles, skipped unrated movies, and errors with file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "recrun/data_source.hpp"
#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct Loaded {
  Dataset dataset;
  std::map<std::string, int> warnings;
};

Loaded load(const fs::path& dir) {
  Loaded out;
  auto source = test::test_registry().data_source("movielens").make();
  out.dataset = source->load(dir, [&](const std::string& w) { ++out.warnings[w]; });
  return out;
}

void expect_error(const fs::path& dir, const std::string& file, std::int64_t line,
                  const std::string& what) {
  try {
    load(dir);
    ADD_FAILURE() << "expected a DataError for " << file << ":" << line << " (" << what << ")";
  } catch (const DataError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file + ":" + std::to_string(line) + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
    EXPECT_EQ(e.line(), line);
  }
}

std::vector<std::string> genres(const Dataset& d, const std::string& item) {
  const auto& f = d.categorical.at("genre");
  std::vector<std::string> out;
  for (auto v : f.of(*d.find_item(item))) out.push_back(f.vocab[v]);
  return out;
}

float year(const Dataset& d, const std::string& item) {
  const auto& f = d.numeric.at("year");
  const auto i = *d.find_item(item);
  return f.present[i] ? f.values[i] : -1.0f;
}

void write_latest(const fs::path& dir) {
  write(dir / "ratings.csv",
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n"
        "1,11,4.0,964981247\n"
        "2,12,5.0,964983815\n"
        "2,1,3.5,964983000\n"
        "2,13,3.5,964983000\n");
  write(dir / "movies.csv",
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
        "12,\"Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)\",Comedy|War\n"
        "13,\"Say \"\"Cheese\"\" (2006-2007)\",(no genres listed)\n"
        "14,Never Rated (2000),Drama\n"
        "15,Also Never Rated,Drama\n");
}

TEST(MovieLens, ReadsLatestCsvWithQuotedTitles) {
  const auto dir = test::temp_dir("latest") / "ml-tiny";
  fs::create_directories(dir);
  write_latest(dir);
  const auto [d, warnings] = load(dir);
  EXPECT_EQ(d.name, "ml-tiny");
  EXPECT_EQ(d.num_users(), 2);
  EXPECT_EQ(d.num_items(), 4);  // movies 14 and 15 have no ratings
  EXPECT_EQ(d.num_interactions(), 5);
  // User 2: 1 and 13 tie at 964983000 (file order), then 12.
  std::vector<std::string> seq;
  for (auto i : d.user_items(1)) seq.push_back(d.item_ids[i]);
  EXPECT_EQ(seq, (std::vector<std::string>{"1", "13", "12"}));

  EXPECT_EQ(d.title(*d.find_item("11")), "American President, The");
  EXPECT_EQ(d.title(*d.find_item("13")), "Say \"Cheese\"");
  EXPECT_EQ(year(d, "1"), 1995.0f);
  EXPECT_EQ(year(d, "12"), 1964.0f);
  EXPECT_EQ(year(d, "13"), 2006.0f);
  EXPECT_EQ(genres(d, "11"), (std::vector<std::string>{"Comedy", "Drama", "Romance"}));
  EXPECT_TRUE(genres(d, "13").empty());  // "(no genres listed)" is not a genre
  for (const auto& v : d.categorical.at("genre").vocab) EXPECT_NE(v, "(no genres listed)");

  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings.begin()->first,
            (dir / "movies.csv").string() +
                ": movie has no ratings, so it is not an item; row skipped (first at line 6: movie 14)");
  EXPECT_EQ(warnings.begin()->second, 2);
}

TEST(MovieLens, ReadsMl1mDatAndConvertsLatin1) {
  const auto dir = test::temp_dir("ml1m");
  write(dir / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n");
  write(dir / "movies.dat",
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "3000::Caf\xE9 au lait (1993)::Comedy\n");
  const auto [d, warnings] = load(dir);
  EXPECT_EQ(d.num_users(), 2);
  EXPECT_EQ(d.num_items(), 2);
  EXPECT_EQ(d.num_interactions(), 3);
  EXPECT_EQ(d.title(*d.find_item("661")), "James and the Giant Peach");
  EXPECT_EQ(genres(d, "661"), (std::vector<std::string>{"Animation", "Children's", "Musical"}));
  EXPECT_EQ(year(d, "1193"), 1975.0f);
  EXPECT_EQ(warnings.size(), 1u);  // movie 3000 has no ratings

  // A rated latin-1 title comes out as UTF-8; a file that is UTF-8 already is left alone.
  write(dir / "ratings.dat", "1::3000::5::978300760\n");
  EXPECT_EQ(load(dir).dataset.title(0), "Caf\xC3\xA9 au lait");
  write(dir / "movies.dat", "3000::Caf\xC3\xA9 au lait (1993)::Comedy\n");
  EXPECT_EQ(load(dir).dataset.title(0), "Caf\xC3\xA9 au lait");
}

TEST(MovieLens, DetectsEitherLayout) {
  const auto dir = test::temp_dir("detect");
  auto source = test::test_registry().data_source("movielens").make();
  EXPECT_FALSE(source->detect(dir));
  write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n");
  EXPECT_FALSE(source->detect(dir));  // movies.csv is needed too
  write(dir / "movies.csv", "movieId,title,genres\n");
  EXPECT_TRUE(source->detect(dir));
  EXPECT_EQ(source->inputs(dir), (std::vector<fs::path>{dir / "ratings.csv", dir / "movies.csv"}));
}

TEST(MovieLensErrors, EachBadInputNamesFileAndLine) {
  const auto dir = test::temp_dir("errors");
  write_latest(dir);
  write(dir / "ratings.csv", "userId,itemId,rating,timestamp\n1,1,4,5\n");
  expect_error(dir, "ratings.csv", 1, "missing column 'movieId'");
  write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,5\n1,one,4,5\n");
  expect_error(dir, "ratings.csv", 3, "column 'movieId': 'one' is not an integer id");
  write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,5pm\n");
  expect_error(dir, "ratings.csv", 2, "column 'timestamp': '5pm' is not an integer");
  write(dir / "ratings.csv", "");
  expect_error(dir, "ratings.csv", 1, "the file is empty");
  write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4\n");
  expect_error(dir, "ratings.csv", 2, "ragged row: 3 fields where 4 are expected");

  write_latest(dir);
  write(dir / "movies.csv", "movieId,title,genres\n1,\"Toy Story, (1995),Comedy\n");
  expect_error(dir, "movies.csv", 2, "unterminated quoted field");
  write(dir / "movies.csv", "movieId,title,genres\n1,\"Toy\" Story,Comedy\n");
  expect_error(dir, "movies.csv", 2, "text after a closing quote");
  write(dir / "movies.csv", "movieId,title,genres\n1,Toy Story,Comedy,Extra\n");
  expect_error(dir, "movies.csv", 2, "ragged row: 4 fields where 3 are expected");
  write(dir / "movies.csv", "movieId,name,genres\n");
  expect_error(dir, "movies.csv", 1, "missing column 'title'");

  const auto dat = test::temp_dir("errors-dat");
  write(dat / "movies.dat", "1::Toy Story (1995)::Comedy\n");
  write(dat / "ratings.dat", "1::1::5::978300760\n1::1::5\n");
  expect_error(dat, "ratings.dat", 2, "ragged row: 3 fields where 4 are expected");
  write(dat / "ratings.dat", "1::1::5::978300760\nu2::1::5::978300760\n");
  expect_error(dat, "ratings.dat", 2, "column 'UserID': 'u2' is not an integer id");
  write(dat / "ratings.dat", "\n");
  expect_error(dat, "ratings.dat", 1, "the file is empty");
  write(dat / "ratings.dat", "1::1::5::978300760\n");
  write(dat / "movies.dat", "1::Toy Story (1995)::Comedy\n2 Jumanji (1995) Adventure\n");
  expect_error(dat, "movies.dat", 2, "ragged row: 1 field where 3 are expected");
}

TEST(MovieLens, RatedMoviesMissingFromMoviesCsvAreCountedWithTheirFirstLine) {
  const auto dir = test::temp_dir("missing") / "ml-gap";
  fs::create_directories(dir);
  write(dir / "ratings.csv",
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n"
        "1,77,4.0,964981247\n"   // line 3: movie 77 is not in movies.csv
        "2,1,5.0,964983815\n"
        "2,88,3.5,964983000\n"   // line 5: nor is 88
        "2,77,3.5,964983001\n");
  write(dir / "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n");
  const auto [d, warnings] = load(dir);
  EXPECT_EQ(d.num_items(), 3);  // the ratings are real: the movies stay items, without metadata
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings.begin()->first,
            (dir / "ratings.csv").string() +
                ": 2 rated movies are missing from movies.csv (first: movie 77 at line 3); no "
                "title, year or genres for them");
}

TEST(MovieLens, LoadsTheBundledLatestSmall) {
  const fs::path dir = fs::path(RECRUN_SOURCE_DIR) / "experiments/data/ml-latest-small";
  if (!fs::exists(dir / "ratings.csv")) GTEST_SKIP() << "bundled data not present";
  const auto [d, warnings] = load(dir);
  // GroupLens's file as its README states it: 100,836 ratings by 610 users (the checksums are
  // checked by tests/framework/test_bundled_data.cpp).
  EXPECT_EQ(d.num_users(), 610);
  EXPECT_EQ(d.num_interactions(), 100836);
  EXPECT_EQ(d.num_items(), 9724);  // 9742 movies, 18 of them never rated
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings.begin()->first.find("movie has no ratings"), std::string::npos);
  EXPECT_EQ(warnings.begin()->second, 18);
  EXPECT_EQ(d.title(*d.find_item("1")), "Toy Story");
  EXPECT_EQ(year(d, "1"), 1995.0f);
  EXPECT_EQ(d.categorical.at("genre").vocab_size(), 19);  // 20 labels minus "(no genres listed)"
}

}  // namespace
}  // namespace recrun
