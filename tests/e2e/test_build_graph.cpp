// The quickstart builds only what it runs: the `recrun_app` target (scripts/quickstart.sh) needs
// the recrun executable and every plugin, and nothing of the tests or the benchmarks. Read from
// the build graph itself (`ninja -t inputs`, every file the target depends on, transitively).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "support/process.hpp"

namespace fs = std::filesystem;

namespace {

// Every input of `target` in the build tree, one path per element.
std::vector<std::string> inputs_of(const std::string& target) {
  const auto r = recrun::test::run_command(
      fmt::format("ninja -C {} -t inputs {} 2>&1", recrun::test::shell_quote(RECRUN_BINARY_DIR),
                  target));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> out;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

TEST(BuildGraph, TheQuickstartTargetNeedsNoTestOrBenchmark) {
  if (!fs::exists(fs::path(RECRUN_BINARY_DIR) / "build.ninja"))
    GTEST_SKIP() << "not a Ninja build tree";
  const auto inputs = inputs_of("recrun_app");
  ASSERT_GT(inputs.size(), 50u);
  for (const auto& path : inputs) {
    for (const char* part : {"/tests/", "/bench/", "recrun_tests", "test-plugins", "gtest"})
      EXPECT_EQ(path.find(part), std::string::npos) << "recrun_app depends on " << path;
    EXPECT_FALSE(path.starts_with("tests/") || path.starts_with("bench/")) << path;
  }
  // ... while it does contain the executable's and the plugins' sources.
  std::set<std::string> wanted = {"framework/src/cli/main.cpp", "plugins/models/ease/ease.cpp",
                                  "plugins/models/sasrec/sasrec.cpp",
                                  "plugins/data/movielens/movielens.cpp"};
  for (const auto& path : inputs)
    for (auto it = wanted.begin(); it != wanted.end();)
      it = path.ends_with(*it) ? wanted.erase(it) : std::next(it);
  EXPECT_TRUE(wanted.empty()) << "missing from recrun_app: " << *wanted.begin();
  // The whole build does include the tests (the check above can fail).
  bool tests_in_all = false;
  for (const auto& path : inputs_of("all"))
    tests_in_all |= path.find("/tests/") != std::string::npos;
  EXPECT_TRUE(tests_in_all);
}

}  // namespace
