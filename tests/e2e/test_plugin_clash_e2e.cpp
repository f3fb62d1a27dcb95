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
  // clash_within registers one name twice and is refused whole: listing still happens, but the
  // command fails, since it exists to say what is usable.
  ASSERT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: 1 plugin library was refused"), std::string::npos) << r.output;
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

// A model whose library was refused: `recrun run` and `recrun sweep` say why it is missing (the
// registration error, the library and its path), not just "unknown model".
TEST(PluginClashE2E, ARefusedLibrarysModelIsExplainedByRunAndSweep) {
  const fs::path dir = recrun::test::temp_dir("refused-run");
  const std::string fixtures = recrun::test::fixture_plugin_dir().string();
  const auto r = run_command(recrun_bin() + " run --model bad_declaration --threads 1 --data " +
                             shell_quote((dir / "none").string()) + " --results " +
                             shell_quote((dir / "results").string()) + " --plugin-dir " +
                             shell_quote(fixtures));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("model 'bad_declaration' is not loaded: its library " + fixtures +
                          "/librecrun_bad_declaration.so was refused"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("parameter 'rate' has a default (2) outside its own declaration"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "results" / "results.db")) << "nothing is recorded";
  {
    std::ofstream x(dir / "x.toml");
    x << "[data]\npath = \"none\"\n[[group]]\nmodel = \"half_registered\"\n";
  }
  const auto s = run_command(recrun_bin() + " sweep " + shell_quote((dir / "x.toml").string()) +
                             " --dry-run --plugin-dir " + shell_quote(fixtures));
  EXPECT_NE(s.exit_code, 0) << s.output;
  EXPECT_NE(s.output.find("librecrun_throws_on_register.so was refused"), std::string::npos)
      << s.output;
  EXPECT_NE(s.output.find("fixture refuses to finish registering"), std::string::npos) << s.output;
}

}  // namespace
