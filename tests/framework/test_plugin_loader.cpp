#include <gtest/gtest.h>

#include <fstream>

#include "core/plugin_loader.hpp"
#include "recrun/error.hpp"
#include "recrun/model.hpp"
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

// A model whose library was refused is not "unknown": the lookup names the library, its path and
// the registration error, which `recrun run --model NAME` prints.
TEST(PluginLoader, ALookupOfARefusedLibrarysComponentSaysWhy) {
  Registry r;
  load_plugins({test::fixture_plugin_dir(), test::plugin_dir()}, r);
  ASSERT_FALSE(r.refused().empty());
  const auto message = [&](std::string_view name) {
    try {
      r.model(name);
    } catch (const PluginError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string half = message("half_registered");
  EXPECT_NE(half.find("model 'half_registered' is not loaded: its library"), std::string::npos)
      << half;
  EXPECT_NE(half.find((test::fixture_plugin_dir() / "librecrun_throws_on_register.so").string()),
            std::string::npos)
      << half;
  EXPECT_NE(half.find("fixture refuses to finish registering"), std::string::npos) << half;
  const std::string bad = message("bad_declaration");
  EXPECT_NE(bad.find("librecrun_bad_declaration.so was refused"), std::string::npos) << bad;
  EXPECT_NE(bad.find("parameter 'rate' has a default (2) outside its own declaration"),
            std::string::npos)
      << bad;
  // A name no library tried still lists the refusals, since one of them may be the culprit.
  const std::string other = message("no_such_model");
  EXPECT_NE(other.find("unknown model 'no_such_model'"), std::string::npos) << other;
  EXPECT_NE(other.find("refused: "), std::string::npos) << other;
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

TEST(PluginLoader, LoadingALibraryTwiceSkipsItsNamesWithANote) {
  Registry r;
  EXPECT_TRUE(load_plugin(test::plugin_dir() / "librecrun_ease.so", r).empty());
  const auto notes = load_plugin(test::plugin_dir() / "librecrun_ease.so", r);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("model 'ease' is not loaded: librecrun_ease.so already provides it"),
            std::string::npos)
      << notes[0];
  EXPECT_EQ(r.models().size(), 1u);
}

std::filesystem::path clash_dir() {
  return std::filesystem::path(RECRUN_BINARY_DIR) / "test-plugins-clash";
}

std::string warning_about(const LoadReport& report, const std::string& needle) {
  for (const auto& w : report.warnings)
    if (w.find(needle) != std::string::npos) return w;
  return {};
}

// Trains and scores a model from the registry on a tiny data set: its library must be loaded.
torch::Tensor fit_and_score(const Registry& r, const std::string& name) {
  DatasetBuilder b;
  b.add_interaction("u1", "i1", 1);
  b.add_interaction("u1", "i2", 2);
  b.add_interaction("u2", "i2", 1);
  const Dataset data = b.build("tiny", "/nonexistent", "fp");
  const ModelInfo& info = r.model(name);
  auto model = info.make(resolve_params(info.params, {}, name), {.dataset = data, .registry = r});
  const Interactions train({0, 2, 3}, {0, 1, 1}, 2);
  TrainContext ctx(data, train, 1, 1);
  model->fit_epoch(ctx);
  return model->score(UserBatch({0}, {train.items(0)}, 2));
}

TEST(PluginLoader, ACrossLibraryClashSkipsOnlyThatNameAndSaysWhoWins) {
  // clash_a registers 'dupe'; clash_b registers 'fresh' and then 'dupe'. Before, merging threw
  // half-way and unloaded clash_b while 'fresh' still pointed into it: SIGSEGV.
  Registry r;
  const auto report = load_plugins({clash_dir()}, r);
  const std::string w = warning_about(report, "librecrun_clash_b.so: model 'dupe'");
  EXPECT_NE(w.find("is not loaded: librecrun_clash_a.so already provides it"), std::string::npos)
      << w;
  EXPECT_NE(w.find("the first library in plugin search order wins"), std::string::npos) << w;
  EXPECT_EQ(r.origin(ComponentKind::model, "dupe"), "librecrun_clash_a.so");
  EXPECT_EQ(r.origin(ComponentKind::model, "fresh"), "librecrun_clash_b.so");
  // clash_b's factory and model code are still callable: the library stayed loaded.
  const torch::Tensor fresh = fit_and_score(r, "fresh");
  EXPECT_FLOAT_EQ(fresh[0][1].item<float>(), 2.0f + 2.0f);  // count 2 + clash_b's offset 2
  const torch::Tensor dupe = fit_and_score(r, "dupe");
  EXPECT_FLOAT_EQ(dupe[0][1].item<float>(), 2.0f + 1.0f);  // clash_a's, offset 1
}

TEST(PluginLoader, ALibraryThatRegistersANameTwiceIsRefusedWhole) {
  Registry r;
  const auto report = load_plugins({clash_dir()}, r);
  const std::string w = warning_about(report, "librecrun_clash_within.so");
  EXPECT_NE(w.find("registration failed, nothing from it is loaded"), std::string::npos) << w;
  EXPECT_NE(w.find("registers model 'twice' twice"), std::string::npos) << w;
  EXPECT_THROW(r.model("solo"), PluginError);  // registered before the duplicate, not kept
  EXPECT_THROW(r.model("twice"), PluginError);
}

TEST(PluginLoader, AClashWithABuiltInIsWonByTheEarlierDirectoryWithAWarning) {
  {
    Registry r;  // built-ins first: the built-in popularity wins
    const auto report = load_plugins({test::plugin_dir(), clash_dir()}, r);
    const std::string w = warning_about(report, "librecrun_clash_builtin.so: model 'popularity'");
    EXPECT_NE(w.find("librecrun_popularity.so already provides it"), std::string::npos) << w;
    EXPECT_EQ(r.origin(ComponentKind::model, "popularity"), "librecrun_popularity.so");
  }
  {
    Registry r;  // a user directory first: the user's wins, and the built-in's name is skipped
    const auto report = load_plugins({clash_dir(), test::plugin_dir()}, r);
    const std::string w = warning_about(report, "librecrun_popularity.so: model 'popularity'");
    EXPECT_NE(w.find("librecrun_clash_builtin.so already provides it"), std::string::npos) << w;
    EXPECT_EQ(r.origin(ComponentKind::model, "popularity"), "librecrun_clash_builtin.so");
    EXPECT_FLOAT_EQ(fit_and_score(r, "popularity")[0][0].item<float>(), 1.0f + 100.0f);
    EXPECT_NO_THROW(r.model("ease"));  // the other built-ins are unaffected
  }
}

TEST(PluginLoader, GarbageAndEmptyLibrariesAreWarningsNotCrashes) {
  const auto dir = test::temp_dir("junk");
  { std::ofstream(dir / "librecrun_empty.so"); }
  {
    std::ofstream out(dir / "librecrun_garbage.so", std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 131 + 7) & 0xff));
  }
  {
    // An ELF header and nothing else.
    std::ofstream out(dir / "librecrun_truncated.so", std::ios::binary);
    const char elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
    out.write(elf, sizeof elf);
  }
  Registry r;
  const auto report = load_plugins({dir, test::plugin_dir()}, r);
  for (const auto* name : {"librecrun_empty.so", "librecrun_garbage.so", "librecrun_truncated.so"}) {
    const std::string w = warning_about(report, name);
    // Refused before dlopen when there is no ELF header (the candidate check), by dlopen else.
    EXPECT_TRUE(w.find("cannot load") != std::string::npos ||
                w.find("not loaded: not a shared library") != std::string::npos)
        << name << ": " << w;
  }
  EXPECT_NO_THROW(r.model("ease"));
}

}  // namespace
}  // namespace recrun::core
