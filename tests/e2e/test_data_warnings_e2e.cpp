// A data set's reader warnings are said once, when its files are read: loads from the cache keep
// them in their record without repeating them, and `recrun data stats` lists them.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(DataWarningsE2E, AreSaidOnceAndListedByDataStats) {
  // The bundled MovieLens files, copied so that this test reads them first: movies.csv lists 18
  // movies that have no ratings.
  const fs::path dir = recrun::test::temp_dir("data-warnings");
  const fs::path data = dir / "ml";
  fs::create_directories(data);
  for (const char* f : {"movies.csv", "ratings.csv"})
    fs::copy_file(fs::path(RECRUN_SOURCE_DIR) / "experiments/data/ml-latest-small" / f, data / f);
  const std::string warning = "movie has no ratings, so it is not an item; row skipped";
  const auto run = [&](const std::string& seed) {
    return run_command(fmt::format("{} run --model popularity --data {} --results {} --seed {} "
                                   "--threads 1",
                                   recrun::test::recrun_bin(), shell_quote(data.string()),
                                   shell_quote((dir / "res").string()), seed));
  };
  auto r = run("1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "warning: "), 1u) << r.output;
  EXPECT_EQ(count(r.output, warning), 1u) << r.output;
  EXPECT_NE(r.output.find("(18 times)"), std::string::npos) << r.output;
  // Later commands load the cache and stay quiet about it...
  r = run("2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, warning), 0u) << r.output;
  // ...and data stats lists what the reader said, from the cache's record.
  r = run_command(fmt::format("{} data stats {}", recrun::test::recrun_bin(),
                              shell_quote(data.string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(from the cache)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("warnings when the files were read: 1\n"), std::string::npos) << r.output;
  EXPECT_EQ(count(r.output, warning), 1u) << r.output;
  EXPECT_EQ(count(r.output, "warning: "), 0u) << r.output;
  // A data set without warnings says so.
  r = run_command(fmt::format("{} data synth --out {} --users 40 --items 30 --seed 3 && {} data "
                              "stats {}",
                              recrun::test::recrun_bin(), shell_quote((dir / "synth").string()),
                              recrun::test::recrun_bin(), shell_quote((dir / "synth").string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warnings when the files were read: none"), std::string::npos)
      << r.output;
}
