// A plugin built outside the recrun tree, against the SDK exported by this build, loads and runs.
#include <gtest/gtest.h>

#include <fstream>

#include "core/plugin_loader.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace recrun {
namespace {

TEST(OutOfTreePlugin, BuildsAgainstExportedSdkAndLoads) {
  const auto src = std::filesystem::path(RECRUN_TEST_FIXTURES) / "out_of_tree";
  const auto project = test::temp_dir("oot");
  std::filesystem::copy_file(src / "project.cmake", project / "CMakeLists.txt");
  std::filesystem::copy_file(src / "hello.cpp", project / "hello.cpp");
  const auto build = project / "build";

  const std::string configure =
      "cmake -S " + test::shell_quote(project.string()) + " -B " + test::shell_quote(build.string()) +
      " -DCMAKE_BUILD_TYPE=Release -Drecrun_DIR=" + test::shell_quote(RECRUN_BINARY_DIR);
  const auto c = test::run_command(configure);
  ASSERT_EQ(c.exit_code, 0) << c.output;
  const auto b = test::run_command("cmake --build " + test::shell_quote(build.string()));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  ASSERT_TRUE(std::filesystem::exists(build / "librecrun_hello.so"));

  // The real binary lists it with its parameter.
  const auto listing =
      test::run_command(test::recrun_bin() + " plugins --plugin-dir " + test::shell_quote(build.string()));
  ASSERT_EQ(listing.exit_code, 0) << listing.output;
  EXPECT_NE(listing.output.find("hello"), std::string::npos) << listing.output;
  EXPECT_NE(listing.output.find("out-of-tree example"), std::string::npos) << listing.output;
  EXPECT_NE(listing.output.find("bias"), std::string::npos) << listing.output;
  EXPECT_NE(listing.output.find("ease"), std::string::npos) << listing.output;

  // And it works in-process: its scores rank items by id plus the bias.
  Registry registry;
  core::load_plugin(build / "librecrun_hello.so", registry);
  const auto& info = registry.model("hello");
  const Params p = resolve_params(info.params, {{"bias", 2.0}}, "model 'hello'");
  static const Dataset empty;
  auto model = info.make(p, ModelEnv{empty, registry, 0});
  Interactions train({0, 1}, {0}, 4);
  TrainContext ctx(empty, train, 0, 1);
  EXPECT_TRUE(model->fit_epoch(ctx).converged);
  const auto scores = model->score(UserBatch({0}, {train.items(0)}, 4));
  EXPECT_TRUE(torch::equal(scores, torch::tensor({{2.0f, 3.0f, 4.0f, 5.0f}})));
}

}  // namespace
}  // namespace recrun
