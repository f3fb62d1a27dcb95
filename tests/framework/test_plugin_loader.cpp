#include <gtest/gtest.h>

#include "core/plugin_loader.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"

namespace recrun::core {
namespace {

TEST(PluginLoader, LoadsEveryBuiltPluginWithItsSchema) {
  Registry r;
  const auto report = load_plugins({test::plugin_dir()}, r);
  EXPECT_TRUE(report.warnings.empty()) << report.warnings.front();
  const ModelInfo& ease = r.model("ease");
  EXPECT_FALSE(ease.summary.empty());
  ASSERT_FALSE(ease.params.empty());
  EXPECT_EQ(ease.params[0].name, "lambda");
  EXPECT_EQ(r.origin(ComponentKind::model, "ease"), "librecrun_ease.so");
  EXPECT_NO_THROW(r.model("popularity"));
}

TEST(PluginLoader, BadLibrariesGetOneWarningEachAndTheOthersStillLoad) {
  const auto fixtures = test::fixture_plugin_dir();
  Registry r;
  const auto report = load_plugins({fixtures, test::plugin_dir()}, r);
  auto warning_for = [&](const std::string& file) -> std::string {
    for (const auto& w : report.warnings)
      if (w.find(file) != std::string::npos) return w;
    return {};
  };
  const std::string abi = warning_for("librecrun_bad_abi.so");
  EXPECT_NE(abi.find("sdk=999"), std::string::npos) << abi;
  EXPECT_NE(abi.find("rebuild the plugin"), std::string::npos) << abi;
  const std::string not_plugin = warning_for("librecrun_not_a_plugin.so");
  EXPECT_NE(not_plugin.find("not a recrun plugin"), std::string::npos) << not_plugin;
  const std::string throws = warning_for("librecrun_throws_on_register.so");
  EXPECT_NE(throws.find("fixture refuses"), std::string::npos) << throws;
  // Nothing from the refused libraries was registered; the real plugins were.
  EXPECT_THROW(r.model("bad_abi_model"), PluginError);
  EXPECT_THROW(r.model("half_registered"), PluginError);
  EXPECT_NO_THROW(r.model("ease"));
}

TEST(PluginLoader, UnknownNamesListTheKnownOnesWithASuggestion) {
  try {
    test::test_registry().model("eas");
    FAIL();
  } catch (const PluginError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown model 'eas'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("did you mean 'ease'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("popularity"), std::string::npos) << msg;
  }
}

TEST(PluginLoader, MissingDirectoryIsAWarningNotAnError) {
  Registry r;
  const auto report = load_plugins({"/nonexistent/recrun/plugins"}, r);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].find("does not exist"), std::string::npos);
}

TEST(PluginLoader, SearchPathHonoursEnvironmentAndKeepsOrder) {
  const auto a = test::temp_dir("a");
  const auto b = test::temp_dir("b");
  ::setenv("RECRUN_PLUGIN_PATH", (b.string() + ":" + a.string()).c_str(), 1);
  const auto path = plugin_search_path({a});
  ::unsetenv("RECRUN_PLUGIN_PATH");
  ASSERT_GE(path.size(), 2u);
  EXPECT_EQ(path[0], std::filesystem::weakly_canonical(a));
  EXPECT_EQ(path[1], std::filesystem::weakly_canonical(b));  // a is not repeated
}

TEST(PluginLoader, DuplicateComponentNamesAreRefused) {
  Registry r;
  load_plugin(test::plugin_dir() / "librecrun_ease.so", r);
  try {
    load_plugin(test::plugin_dir() / "librecrun_ease.so", r);
    FAIL();
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("registered twice"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace recrun::core
