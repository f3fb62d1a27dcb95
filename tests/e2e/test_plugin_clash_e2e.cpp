// The real binary against libraries whose names clash (tests/fixtures/clash_*): every command
// still runs, says which library won, and a model from a library that also offered a clashing
// name trains and is recorded. Before SDK 2 both commands died with SIGSEGV.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::recrun_bin;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

std::string clash_dir() { return (fs::path(RECRUN_BINARY_DIR) / "test-plugins-clash").string(); }

TEST(PluginClashE2E, PluginsListsTheWinnersAndWarnsAboutTheRest) {
  const auto r = run_command(recrun_bin() + " plugins --brief --plugin-dir " +
                             shell_quote(clash_dir()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fresh"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dupe"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("librecrun_clash_b.so: model 'dupe' is not loaded: "
                          "librecrun_clash_a.so already provides it"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("librecrun_clash_within.so: registration failed"), std::string::npos)
      << r.output;
  // The user's directory comes first, so its 'popularity' shadows the built-in, loudly.
  EXPECT_NE(r.output.find("librecrun_popularity.so: model 'popularity' is not loaded: "
                          "librecrun_clash_builtin.so already provides it"),
            std::string::npos)
      << r.output;
}

TEST(PluginClashE2E, AModelFromALibraryWithAClashTrainsAndIsRecorded) {
  const fs::path dir = recrun::test::temp_dir("clash-run");
  fs::create_directories(dir / "data");
  {
    std::ofstream csv(dir / "data" / "train_ratings.csv");
    csv << "user,item,time\n";
    for (int u = 0; u < 12; ++u)
      for (int k = 0; k < 5; ++k) csv << u + 1 << "," << (u + k * 3) % 10 + 1 << "," << 100 + k << "\n";
  }
  const auto r = run_command(recrun_bin() + " run --model fresh --threads 1 --plugin-dir " +
                             shell_quote(clash_dir()) + " --data " +
                             shell_quote((dir / "data").string()) + " --results " +
                             shell_quote((dir / "results").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  recrun::results::ResultsStore store(dir / "results" / "results.db");
  const auto runs = store.runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].model, "fresh");
  EXPECT_EQ(runs[0].status, recrun::results::RunStatus::finished);
}

}  // namespace
