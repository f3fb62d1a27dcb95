#include "support/plugins.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>

#include "core/plugin_loader.hpp"

namespace recrun::test {

std::filesystem::path plugin_dir() { return std::filesystem::path(RECRUN_BINARY_DIR) / "plugins"; }

std::filesystem::path fixture_plugin_dir() {
  return std::filesystem::path(RECRUN_BINARY_DIR) / "test-plugins";
}

const Registry& test_registry() {
  static const Registry* registry = [] {
    auto* r = new Registry();
    const auto report = core::load_plugins({plugin_dir()}, *r);
    for (const auto& w : report.warnings) ADD_FAILURE() << "plugin failed to load: " << w;
    return r;
  }();
  return *registry;
}

std::filesystem::path temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test = info ? fmt::format("{}.{}", info->test_suite_name(), info->name()) : "x";
  auto dir = std::filesystem::path(::testing::TempDir()) /
             fmt::format("recrun-{}-{}-{}-{}", ::getpid(), test, tag, counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace recrun::test
