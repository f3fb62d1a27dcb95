// Why recrun scans an experiment file's nesting before toml++ parses it (sweep/experiment.cpp,
// check_toml_nesting), although toml++ 3.3 has a depth limit of its own: that limit
// (TOML_MAX_NESTED_VALUES, 256) bounds the parser's recursion over nested arrays and inline
// tables, but not dotted keys and table headers, and not the depth of the table tree they add
// up to, whose destruction recurses (docs/architecture.md has the stack measurements). These
// tests pin both facts about the library, so that a toml++ that limits dotted keys too shows
// up here, and check what the scan does with what toml++ lets through.
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <utility>
#include <vector>

#include "recrun/error.hpp"
#include "sweep/experiment.hpp"

using namespace recrun;

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Concatenation by appending (GCC 12 warns, wrongly, about `"literal" + std::string` at -O3).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const std::string_view part : parts) out.append(part);
  return out;
}

// Depth of the deepest table under `root` (root itself counts 1), walked without recursion.
int tree_depth(const toml::table& root) {
  int deepest = 0;
  std::vector<std::pair<const toml::table*, int>> todo = {{&root, 1}};
  while (!todo.empty()) {
    const auto [t, depth] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, depth);
    for (const auto& [key, node] : *t) {
      if (const auto* sub = node.as_table()) todo.emplace_back(sub, depth + 1);
    }
  }
  return deepest;
}

std::string experiment_error(const std::string& body) {
  try {
    (void)sweep::parse_experiment(cat({"[data]\npath = \"d\"\n", body}), "/exp/deep.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(TomlNesting, TomlppLimitsNestedValuesButNotDottedKeys) {
  // Nested arrays: toml++ refuses the 257th level itself, naming the place.
  try {
    (void)toml::parse(cat({"x = ", repeat("[", 300), repeat("]", 300)}));
    ADD_FAILURE() << "toml++ accepted 300 nested arrays";
  } catch (const toml::parse_error& e) {
    EXPECT_NE(std::string(e.description()).find("TOML_MAX_NESTED_VALUES"), std::string::npos)
        << e.description();
    EXPECT_EQ(e.source().begin.line, 1u);
  }
  // Dotted keys: no limit; 2,000 parts make a table tree 2,001 deep.
  const toml::table dotted = toml::parse(cat({repeat("a.", 2000), "b = 1\n"}));
  EXPECT_EQ(tree_depth(dotted), 2001);
  const toml::table header = toml::parse(cat({"[", repeat("a.", 2000), "b]\n"}));
  EXPECT_EQ(tree_depth(header), 2002);
}

TEST(TomlNesting, InlineTablesWithinTomlppsLimitStillBuildDeepTrees) {
  // 100 nested inline tables (under toml++'s 256) whose keys have 20 parts each: toml++ takes
  // it, and the tree is 2,001 levels deep. Only a scan that adds key parts to the container depth
  // bounds that; recrun's refuses it where the sum passes 64, naming file, line and column.
  const std::string value = cat({repeat(cat({"{", repeat("a.", 19), "a = "}), 100), "1", repeat("}", 100)});
  const toml::table parsed = toml::parse(cat({"x = ", value, "\n"}));
  EXPECT_EQ(tree_depth(parsed), 2001);
  const std::string msg = experiment_error(cat({"x = ", value, "\n"}));
  EXPECT_NE(msg.find("/exp/deep.toml:3:"), std::string::npos) << msg.substr(0, 300);
  EXPECT_NE(msg.find("more than 64 levels deep"), std::string::npos) << msg.substr(0, 300);
}
