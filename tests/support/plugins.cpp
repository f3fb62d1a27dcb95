#include "support/plugins.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "core/plugin_loader.hpp"

namespace recrun::test {

namespace {

std::mutex g_dirs_mutex;
std::vector<std::filesystem::path>& made_dirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}

// The process's temp_dir()s go when all its tests passed (checkpoints, event files and browser
// screenshots add up over a suite run); a failure keeps them for a look.
class RemoveTempDirs final : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!::testing::UnitTest::GetInstance()->Passed()) return;
    std::lock_guard lock(g_dirs_mutex);
    for (const auto& d : made_dirs()) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};

[[maybe_unused]] ::testing::Environment* const g_cleanup =
    ::testing::AddGlobalTestEnvironment(new RemoveTempDirs);

}  // namespace

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
  {
    std::lock_guard lock(g_dirs_mutex);
    made_dirs().push_back(dir);
  }
  return dir;
}

}  // namespace recrun::test
