// The bundled MovieLens latest-small files are GroupLens's, byte for byte: each file's sha256 is
// recorded in experiments/data/ml-latest-small/SHA256SUMS (ratings.csv's is the one that
// shared/data/README.md gives for the clean file), and every file of the directory is listed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "support/process.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = fs::path(RECRUN_SOURCE_DIR) / "experiments/data/ml-latest-small";

TEST(BundledData, MatchesItsChecksums) {
  const auto r = test::run_command("cd " + test::shell_quote(kDir.string()) +
                                   " && sha256sum --check --strict SHA256SUMS");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // The clean ratings.csv (without the stray '999,999999' row an earlier copy had).
  std::ifstream sums(kDir / "SHA256SUMS");
  std::set<std::string> listed;
  std::string line;
  bool ratings = false;
  while (std::getline(sums, line)) {
    listed.insert(line.substr(66));
    if (line == "80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8  ratings.csv")
      ratings = true;
  }
  EXPECT_TRUE(ratings) << "ratings.csv's checksum is not GroupLens's";
  for (const auto& e : fs::directory_iterator(kDir)) {
    if (!e.is_regular_file()) continue;  // the dataset cache (.recrun-cache/) lives here too
    const auto name = e.path().filename().string();
    if (name != "SHA256SUMS") EXPECT_TRUE(listed.count(name)) << name << " has no checksum";
  }
}

TEST(BundledData, HasNoStrayRow) {
  std::ifstream in(kDir / "ratings.csv", std::ios::binary);
  std::string line;
  std::int64_t rows = -1;  // the header
  while (std::getline(in, line)) {
    ++rows;
    EXPECT_FALSE(line.starts_with("999,")) << "line " << rows + 1 << ": " << line;
  }
  EXPECT_EQ(rows, 100836);
}

}  // namespace
}  // namespace recrun
