// A plugin built outside the recrun tree, against the SDK exported by this build, loads and runs;
// it gets the tree's build quality (Release by default, the same warnings, hidden visibility,
// PIC) and its own test runs the SDK's conformance check.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/plugin_loader.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace recrun {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of a CMakeCache.txt entry ("" when absent).
std::string cache_entry(const std::filesystem::path& build, const std::string& key) {
  std::ifstream in(build / "CMakeCache.txt");
  for (std::string line; std::getline(in, line);) {
    // KEY:TYPE=VALUE
    const auto colon = line.find(':'), equals = line.find('=');
    if (colon != std::string::npos && equals != std::string::npos && colon < equals &&
        line.compare(0, colon, key) == 0 && colon == key.size())
      return line.substr(equals + 1);
  }
  return "";
}

// The JSON string starting at `pos` (just after its opening quote), escapes kept.
std::string json_string_at(const std::string& json, std::size_t pos) {
  std::string out;
  for (; pos < json.size() && json[pos] != '"'; ++pos) {
    if (json[pos] == '\\' && pos + 1 < json.size()) out += json[pos++];
    out += json[pos];
  }
  return out;
}

// The compile command of the source file whose name ends with `file`, from compile_commands.json
// (CMake writes each entry as "directory", "command", "file", in that order).
std::string compile_command(const std::filesystem::path& build, const std::string& file) {
  const std::string json = read_text(build / "compile_commands.json");
  const std::string command_key = "\"command\": \"", file_key = "\"file\": \"";
  for (std::size_t at = json.find(command_key); at != std::string::npos;
       at = json.find(command_key, at + 1)) {
    const std::string command = json_string_at(json, at + command_key.size());
    const std::size_t f = json.find(file_key, at);
    if (f == std::string::npos) break;
    const std::string name = json_string_at(json, f + file_key.size());
    if (name.size() >= file.size() && name.compare(name.size() - file.size(), file.size(), file) == 0)
      return command;
  }
  return "";
}

bool has_flag(const std::string& command, const std::string& flag) {
  std::istringstream words(command);
  for (std::string w; words >> w;)
    if (w == flag) return true;
  return false;
}

std::string configure_command(const std::filesystem::path& project, const std::filesystem::path& build,
                              const std::string& extra = "") {
  return "cmake -S " + test::shell_quote(project.string()) + " -B " +
         test::shell_quote(build.string()) + " -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -Drecrun_DIR=" +
         test::shell_quote(RECRUN_BINARY_DIR) + extra;
}

std::filesystem::path copy_project() {
  const auto src = std::filesystem::path(RECRUN_TEST_FIXTURES) / "out_of_tree";
  const auto project = test::temp_dir("oot");
  std::filesystem::copy_file(src / "project.cmake", project / "CMakeLists.txt");
  for (const char* f : {"hello_model.hpp", "hello.cpp", "test_hello.cpp"})
    std::filesystem::copy_file(src / f, project / f);
  return project;
}

TEST(OutOfTreePlugin, BuildsAgainstExportedSdkAndLoads) {
  const auto project = copy_project();
  const auto build = project / "build";

  // No CMAKE_BUILD_TYPE: find_package(recrun) makes it Release.
  const auto c = test::run_command(configure_command(project, build));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(cache_entry(build, "CMAKE_BUILD_TYPE"), "Release");
  EXPECT_NE(c.output.find("recrun: no CMAKE_BUILD_TYPE given, building Release"), std::string::npos)
      << c.output;
  // The plugin gets the tree's flags: optimised, the project's warnings, hidden, PIC, C++20.
  const std::string plugin = compile_command(build, "/hello.cpp");
  ASSERT_FALSE(plugin.empty()) << read_text(build / "compile_commands.json");
  for (const char* flag : {"-O3", "-DNDEBUG", "-Wall", "-Wextra", "-Wno-unused-parameter",
                           "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fPIC",
                           "-std=c++20"})
    EXPECT_TRUE(has_flag(plugin, flag)) << flag << " missing from: " << plugin;
  EXPECT_FALSE(has_flag(plugin, "-g")) << plugin;
  // The plugin's own test links recrun::warnings itself.
  const std::string own_test = compile_command(build, "/test_hello.cpp");
  ASSERT_FALSE(own_test.empty());
  for (const char* flag : {"-O3", "-Wall", "-Wextra"})
    EXPECT_TRUE(has_flag(own_test, flag)) << flag << " missing from: " << own_test;

  const auto b = test::run_command("cmake --build " + test::shell_quote(build.string()) + " -j 2");
  ASSERT_EQ(b.exit_code, 0) << b.output;
  ASSERT_TRUE(std::filesystem::exists(build / "librecrun_hello.so"));
  EXPECT_EQ(b.output.find("warning:"), std::string::npos) << b.output;

  // Its own test (registered with add_test) runs the SDK's conformance check from outside the
  // tree: every check passes for the model, and a batch-dependent copy is rejected.
  const auto t = test::run_command("ctest --test-dir " + test::shell_quote(build.string()) +
                                   " --output-on-failure -V");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  for (const char* line : {"PASS shape", "PASS finite", "PASS repeatable",
                           "PASS batch_independence", "PASS round_trip", "PASS resave",
                           "broken model rejected: model conformance check failed",
                           "FAIL batch_independence"})
    EXPECT_NE(t.output.find(line), std::string::npos) << line << "\n" << t.output;

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

// An explicit build type wins over recrun's Release default (configure only: no compile).
TEST(OutOfTreePlugin, AnExplicitBuildTypeIsKept) {
  const auto project = copy_project();
  const auto build = project / "build-debug";
  const auto c = test::run_command(configure_command(project, build, " -DCMAKE_BUILD_TYPE=Debug"));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(cache_entry(build, "CMAKE_BUILD_TYPE"), "Debug");
  EXPECT_EQ(c.output.find("building Release"), std::string::npos) << c.output;
  const std::string plugin = compile_command(build, "/hello.cpp");
  EXPECT_TRUE(has_flag(plugin, "-g")) << plugin;
  EXPECT_FALSE(has_flag(plugin, "-O3")) << plugin;
  EXPECT_TRUE(has_flag(plugin, "-Wall")) << plugin;
}

}  // namespace
}  // namespace recrun
