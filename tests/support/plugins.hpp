// Test helpers shared by the suites: the real plugins of this build, loaded once.
#pragma once

#include <filesystem>

#include "recrun/registry.hpp"

namespace recrun::test {

/// The build's plugins/ directory.
std::filesystem::path plugin_dir();
/// The build's test-plugins/ directory (fixture plugins).
std::filesystem::path fixture_plugin_dir();
/// A registry holding every plugin of this build, loaded on first use; fails the test run if a
/// plugin cannot load.
const Registry& test_registry();
/// A fresh empty directory under the test temp dir, unique per call.
std::filesystem::path temp_dir(const std::string& tag);

}  // namespace recrun::test
