// Tests for the seed_tsv data source: the layout, its features, and an error with file and line
// for every kind of bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
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
  auto source = test::test_registry().data_source("seed_tsv").make();
  out.dataset = source->load(dir, [&](const std::string& w) { ++out.warnings[w]; });
  return out;
}

// Loads `dir`, expecting a DataError whose message names `file` at `line` and contains `what`.
void expect_error(const fs::path& dir, const std::string& file, std::int64_t line,
                  const std::string& what) {
  try {
    load(dir);
    ADD_FAILURE() << "expected a DataError for " << file << ":" << line << " (" << what << ")";
  } catch (const DataError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file + ":" + std::to_string(line) + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
    EXPECT_EQ(e.file().filename().string(), file);
    EXPECT_EQ(e.line(), line);
  }
}

std::vector<std::string> item_names(const Dataset& d, std::int64_t user) {
  std::vector<std::string> out;
  for (auto i : d.user_items(user)) out.push_back(d.item_ids[i]);
  return out;
}

std::vector<std::string> values(const Dataset& d, const std::string& feature, const std::string& item) {
  const auto& f = d.categorical.at(feature);
  std::vector<std::string> out;
  for (auto v : f.of(*d.find_item(item))) out.push_back(f.vocab[v]);
  return out;
}

TEST(SeedTsv, LoadsInteractionsInTimeOrderWithTiesInFileOrder) {
  const auto dir = test::temp_dir("basic") / "my-data";
  fs::create_directories(dir);
  write(dir / "train_ratings.csv",
        "user,item,time\n"
        "1,10,300\n"
        "2,20,100\n"
        "1,11,100\n"
        "1,12,200\n"
        "1,13,200\n"  // tie with 12: file order keeps 12 first
        "2,10,50\n");
  const auto [d, warnings] = load(dir);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(d.name, "my-data");
  EXPECT_EQ(d.num_users(), 2);
  EXPECT_EQ(d.num_items(), 5);
  EXPECT_EQ(d.num_interactions(), 6);
  // Dense ids by first appearance.
  EXPECT_EQ(d.user_ids, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(d.item_ids, (std::vector<std::string>{"10", "20", "11", "12", "13"}));
  EXPECT_EQ(item_names(d, 0), (std::vector<std::string>{"11", "12", "13", "10"}));
  EXPECT_EQ(std::vector<std::int64_t>(d.user_times(0).begin(), d.user_times(0).end()),
            (std::vector<std::int64_t>{100, 200, 200, 300}));
  EXPECT_EQ(item_names(d, 1), (std::vector<std::string>{"10", "20"}));
  EXPECT_TRUE(d.feature_names().empty());
  EXPECT_EQ(d.fingerprint.size(), 16u);
}

TEST(SeedTsv, ReadsEveryFeatureFile) {
  const auto dir = test::temp_dir("features");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n2,3,3\n");
  write(dir / "genres.tsv", "1\tComedy\n1\tDrama\n2\tComedy\n1\tComedy\n");  // repeat counts once
  write(dir / "directors.tsv", "item\tdirector\n1\tAnna Lee\n3\tBo Chan\n");  // optional header
  write(dir / "writers.tsv", "2\tCy Dorn\n2\tDee Eng\n");
  write(dir / "years.tsv", "1\t1995\n2\t2001.0\n");
  write(dir / "titles.tsv", "1\tToy Story\n3\tA title\twith a tab\n");
  write(dir / "title_embeddings.tsv", "1\t0.5 -1 2e-1\n3\t1 2 3\n");
  const auto [d, warnings] = load(dir);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(d.feature_names(), (std::vector<std::string>{"director", "genre", "title", "writer", "year"}));
  EXPECT_EQ(values(d, "genre", "1"), (std::vector<std::string>{"Comedy", "Drama"}));
  EXPECT_EQ(values(d, "genre", "2"), (std::vector<std::string>{"Comedy"}));
  EXPECT_TRUE(values(d, "genre", "3").empty());
  EXPECT_EQ(values(d, "director", "3"), (std::vector<std::string>{"Bo Chan"}));
  EXPECT_EQ(values(d, "writer", "2"), (std::vector<std::string>{"Cy Dorn", "Dee Eng"}));
  const auto& year = d.numeric.at("year");
  EXPECT_EQ(year.values[*d.find_item("1")], 1995.0f);
  EXPECT_EQ(year.values[*d.find_item("2")], 2001.0f);
  EXPECT_EQ(year.present[*d.find_item("3")], 0);
  EXPECT_EQ(d.title(*d.find_item("1")), "Toy Story");
  EXPECT_EQ(d.title(*d.find_item("3")), "A title\twith a tab");
  EXPECT_EQ(d.title(*d.find_item("2")), "");
  const auto& emb = d.dense.at("title");
  EXPECT_EQ(emb.dim, 3);
  const auto i1 = *d.find_item("1");
  EXPECT_FLOAT_EQ(emb.values[i1 * 3 + 0], 0.5f);
  EXPECT_FLOAT_EQ(emb.values[i1 * 3 + 1], -1.0f);
  EXPECT_FLOAT_EQ(emb.values[i1 * 3 + 2], 0.2f);
  EXPECT_EQ(emb.present[*d.find_item("2")], 0);
}

TEST(SeedTsv, AcceptsColumnsInAnyOrderSynonymsTabsCrlfAndBom) {
  const auto dir = test::temp_dir("synonyms");
  write(dir / "train_ratings.csv",
        "\xEF\xBB\xBFtimestamp\trating\tItem_ID\tuserId\r\n"
        "5\t4.0\t007\t1\r\n"
        "\r\n"
        "6\t3.5\t8\t+1\r\n");
  write(dir / "genres.tsv", "7\tWestern\r\n");  // "7" names the item written "007" above
  const auto [d, warnings] = load(dir);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(d.num_users(), 1);
  EXPECT_EQ(d.item_ids, (std::vector<std::string>{"7", "8"}));
  EXPECT_EQ(values(d, "genre", "7"), (std::vector<std::string>{"Western"}));
}

TEST(SeedTsv, FingerprintFollowsTheContents) {
  const auto a = test::temp_dir("fp-a") / "x";
  const auto b = test::temp_dir("fp-b") / "y";
  for (const auto& dir : {a, b}) {
    fs::create_directories(dir);
    write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n");
    write(dir / "genres.tsv", "1\tComedy\n");
  }
  EXPECT_EQ(load(a).dataset.fingerprint, load(b).dataset.fingerprint);  // names of dirs do not matter
  write(b / "genres.tsv", "1\tDrama\n");
  const std::string after_meta = load(b).dataset.fingerprint;
  EXPECT_NE(load(a).dataset.fingerprint, after_meta);
  write(b / "genres.tsv", "1\tComedy\n");
  write(b / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,3\n");
  EXPECT_NE(load(a).dataset.fingerprint, load(b).dataset.fingerprint);
}

TEST(SeedTsv, DetectsAndListsInputs) {
  const auto dir = test::temp_dir("detect");
  auto source = test::test_registry().data_source("seed_tsv").make();
  EXPECT_FALSE(source->detect(dir));
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n");
  write(dir / "years.tsv", "1\t2000\n");
  EXPECT_TRUE(source->detect(dir));
  EXPECT_EQ(source->inputs(dir), (std::vector<fs::path>{dir / "train_ratings.csv", dir / "years.tsv"}));
}

// --- errors: file and line for every case --------------------------------------------------------

TEST(SeedTsvErrors, MissingColumn) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,rating\n1,1,5\n");
  expect_error(dir, "train_ratings.csv", 1, "missing column 'time'");
}

TEST(SeedTsvErrors, NonNumericUserId) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\nalice,2,2\n");
  expect_error(dir, "train_ratings.csv", 3, "column 'user': 'alice' is not an integer id");
}

TEST(SeedTsvErrors, NonNumericItemId) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,x1,1\n");
  expect_error(dir, "train_ratings.csv", 2, "column 'item': 'x1' is not an integer id");
}

TEST(SeedTsvErrors, NonNumericTimestamp) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n1,3,yesterday\n");
  expect_error(dir, "train_ratings.csv", 4, "column 'time': 'yesterday' is not an integer");
}

TEST(SeedTsvErrors, EmptyFile) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "");
  expect_error(dir, "train_ratings.csv", 1, "the file is empty");
}

TEST(SeedTsvErrors, HeaderWithoutRows) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n\n");
  expect_error(dir, "train_ratings.csv", 1, "no interaction rows");
}

TEST(SeedTsvErrors, RaggedRow) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n1,3\n");
  expect_error(dir, "train_ratings.csv", 4, "ragged row: 2 fields where the header has 3");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1,9\n");
  expect_error(dir, "train_ratings.csv", 2, "ragged row: 4 fields");
}

TEST(SeedTsvErrors, RaggedMetadataRow) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n");
  write(dir / "genres.tsv", "1\tComedy\n1\tDrama\tWar\n");
  expect_error(dir, "genres.tsv", 2, "ragged row: 3 tab-separated fields");
  fs::remove(dir / "genres.tsv");
  write(dir / "titles.tsv", "1 Toy Story\n");
  expect_error(dir, "titles.tsv", 1, "ragged row: 1 tab-separated field");
}

TEST(SeedTsvErrors, NonNumericMetadataValues) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n");
  write(dir / "years.tsv", "1\t1999\n2\tnineteen\n");
  expect_error(dir, "years.tsv", 2, "column 'year': 'nineteen' is not a number");
  fs::remove(dir / "years.tsv");
  write(dir / "directors.tsv", "1\tAnna\nB2\tBo\n");
  expect_error(dir, "directors.tsv", 2, "column 'item': 'B2' is not an integer id");
  fs::remove(dir / "directors.tsv");
  write(dir / "title_embeddings.tsv", "1\t0.1 0.2\n2\t0.1 abc\n");
  expect_error(dir, "title_embeddings.tsv", 2, "value 2: 'abc' is not a number");
}

TEST(SeedTsvErrors, EmbeddingsOfDifferentLengths) {
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n");
  write(dir / "title_embeddings.tsv", "1\t0.1 0.2 0.3\n\n2\t0.1 0.2\n");
  expect_error(dir, "title_embeddings.tsv", 3, "vector of length 2 where line 1 had 3");
}

TEST(SeedTsvErrors, MetadataOfAnotherDataSet) {
  // Not one item in common: an error at the first row, not a silently missing feature.
  const auto dir = test::temp_dir("e");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n");
  write(dir / "writers.tsv", "writer_header\tname\n");
  expect_error(dir, "writers.tsv", 1, "column 'item': 'writer_header' is not an integer id");
  write(dir / "writers.tsv", "item\twriter\n501\tAnn\n502\tBo\n");
  expect_error(dir, "writers.tsv", 2, "unknown item '501': none of the 2 rows name an item");
}

TEST(SeedTsvErrors, MissingDirectoryOrRatingsFile) {
  const auto dir = test::temp_dir("e");
  EXPECT_THROW(load(dir / "nope"), DataError);
  try {
    load(dir);
    ADD_FAILURE() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("train_ratings.csv: cannot open"), std::string::npos) << e.what();
  }
}

// --- warnings: safely skipped rows are counted ------------------------------------------------------

TEST(SeedTsvWarnings, UnknownItemsEmptyValuesAndRepeatsAreCountedOnce) {
  const auto dir = test::temp_dir("w");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n1,2,2\n");
  write(dir / "genres.tsv", "1\tComedy\n99\tDrama\n98\tWar\n2\t \n");
  write(dir / "years.tsv", "1\t1990\n1\t1991\n");
  const auto [d, warnings] = load(dir);
  const std::string g = (dir / "genres.tsv").string(), y = (dir / "years.tsv").string();
  EXPECT_EQ(warnings.size(), 3u);
  EXPECT_EQ(warnings.at(g + ": item not in train_ratings.csv; row skipped (first at line 2: item '99')"), 2);
  EXPECT_EQ(warnings.at(g + ": empty genre; row skipped (first at line 4: item '2')"), 1);
  EXPECT_EQ(warnings.at(y + ": item listed again (the first row wins); row skipped (first at line 2: item '1')"), 1);
  EXPECT_EQ(values(d, "genre", "1"), (std::vector<std::string>{"Comedy"}));
  EXPECT_EQ(d.numeric.at("year").values[*d.find_item("1")], 1990.0f);
}

TEST(SeedTsvWarnings, EmptyMetadataFileIsANote) {
  const auto dir = test::temp_dir("w");
  write(dir / "train_ratings.csv", "user,item,time\n1,1,1\n");
  write(dir / "genres.tsv", "");
  const auto [d, warnings] = load(dir);
  EXPECT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings.begin()->first.find("no rows; feature 'genre' not loaded"), std::string::npos);
  EXPECT_EQ(d.categorical.count("genre"), 0u);
}

TEST(SeedTsvErrors, GarbageNeverCrashes) {
  // Random bytes in every file: loading either succeeds or throws DataError, nothing else.
  std::mt19937 rng(7);
  std::string alphabet = "0123456789,\t\n\r \"-+.eabc|:\xEF\xBB\xBF";
  alphabet.push_back('\0');
  for (int round = 0; round < 200; ++round) {
    const auto dir = test::temp_dir("fuzz");
    const auto garbage = [&](std::size_t n) {
      std::string s;
      for (std::size_t k = 0; k < n; ++k) s.push_back(alphabet[rng() % alphabet.size()]);
      return s;
    };
    write(dir / "train_ratings.csv", (round % 2 ? "user,item,time\n" : "") + garbage(rng() % 200));
    write(dir / "genres.tsv", garbage(rng() % 60));
    write(dir / "years.tsv", garbage(rng() % 60));
    write(dir / "title_embeddings.tsv", garbage(rng() % 60));
    try {
      load(dir);
    } catch (const DataError&) {
    }
  }
}

}  // namespace
}  // namespace recrun
