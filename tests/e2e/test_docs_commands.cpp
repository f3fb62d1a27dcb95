// The docs cannot rot: every command in a ```sh block of README.md and docs/*.md runs, as
// written, in a fresh copy of the tree's layout (experiments/, the bundled data, build/bin/recrun),
// every benchmark command shown runs, every complete experiment file in a ```toml block validates (`recrun sweep --dry-run`), and
// every ```sql block runs against a results.db written by a real run.
//
// Synopses with placeholders (DIR, FILE, [--flag N]) belong in ```text blocks. Long runs are
// shortened, never skipped: `recrun sweep FILE` becomes `recrun sweep FILE --dry-run`. The
// few commands that cannot run here are listed in kNotRunHere, each with its reason, and the
// test checks that each of them still appears in the docs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/plugins.hpp"
#include "tensorboard/event_reader.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;

namespace {

struct Block {
  std::string file;
  int line = 0;  // line of the first content line
  std::string lang;
  std::vector<std::pair<int, std::string>> lines;  // (line number, text)
};

std::vector<Block> blocks_of(const fs::path& path, const std::string& shown) {
  std::ifstream in(path);
  std::vector<Block> out;
  std::string line;
  int no = 0;
  std::optional<Block> open;
  while (std::getline(in, line)) {
    ++no;
    if (line.rfind("```", 0) == 0) {
      if (open) {
        out.push_back(std::move(*open));
        open.reset();
      } else {
        open = Block{.file = shown, .line = no + 1, .lang = line.substr(3), .lines = {}};
      }
      continue;
    }
    if (open) open->lines.emplace_back(no, line);
  }
  return out;
}

std::vector<fs::path> doc_files() {
  const fs::path root = RECRUN_SOURCE_DIR;
  std::vector<fs::path> files = {root / "README.md"};
  std::vector<fs::path> docs;
  for (const auto& e : fs::directory_iterator(root / "docs"))
    if (e.path().extension() == ".md") docs.push_back(e.path());
  std::sort(docs.begin(), docs.end());
  files.insert(files.end(), docs.begin(), docs.end());
  return files;
}

std::string shown_name(const fs::path& p) {
  return fs::relative(p, RECRUN_SOURCE_DIR).string();
}

// Commands of a ```sh block: comments dropped, continuation lines joined.
std::vector<std::pair<int, std::string>> commands_of(const Block& b) {
  std::vector<std::pair<int, std::string>> out;
  std::string pending;
  int start = 0;
  for (const auto& [no, raw] : b.lines) {
    std::string text = raw;
    // A comment starts at a '#' preceded by blank space, outside quotes.
    bool single = false, dbl = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\'' && !dbl) single = !single;
      if (text[i] == '"' && !single) dbl = !dbl;
      if (text[i] == '#' && !single && !dbl && (i == 0 || text[i - 1] == ' ')) {
        text.resize(i);
        break;
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    if (pending.empty()) start = no;
    if (!text.empty() && text.back() == '\\') {
      text.pop_back();
      pending += text + " ";
      continue;
    }
    pending += text;
    const auto first = pending.find_first_not_of(' ');
    if (first != std::string::npos) out.emplace_back(start, pending.substr(first));
    pending.clear();
  }
  return out;
}

// Commands that cannot run on a test machine, and why. Each must still be in the docs.
const std::vector<std::pair<std::string, std::string>> kNotRunHere = {
    {"scripts/quickstart.sh", "it is the set-up command itself (installs packages, builds)"},
    {"scripts/test.sh", "it is the test command itself (runs this test)"},
    {"tensorboard --logdir results/tensorboard", "TensorBoard is not a Debian package"},
    {"tensorboard --logdir results/tensorboard/quickstart", "TensorBoard is not a Debian package"},
    {"tensorboard --logdir results/tensorboard/<experiment>", "TensorBoard is not a Debian package"},
    {"pip install tensorboard", "no network on test machines"},
    {"cmake -S . -B build -Drecrun_DIR=/path/to/recrun/build",
     "a user's own plugin project; the OutOfTreePlugin test runs these steps"},
    {"cmake --build build", "a user's own plugin project; the OutOfTreePlugin test runs it"},
    {"recrun plugins --plugin-dir build",
     "a user's own plugin build directory; the OutOfTreePlugin test runs it"},
    {"recrun run --model my_model --data experiments/data/ml-latest-small --set hidden_units=32",
     "my_model is the reader's own plugin"},
    {"recrun report quickstart",
     "needs the sweep's results, and sweeps run here as --dry-run; ReportE2E reports a real sweep"},
    {"recrun report gate_fusion",
     "needs the finished gate_fusion sweep (hours); ReportE2E reports a real small sweep"},
    {"recrun sweep experiments/quickstart.toml --collect",
     "needs a Slurm submission's shards; SlurmE2E collects real ones"},
    {"sqlite3 -readonly -header -column results/results.db",
     "opens an interactive shell; the sql blocks below it run non-interactively"},
};

bool not_run_here(const std::string& cmd) {
  return std::any_of(kNotRunHere.begin(), kNotRunHere.end(),
                     [&](const auto& p) { return p.first == cmd; });
}

// A scratch tree that looks like a fresh clone: experiments/ (files copied, the bundled data
// linked), build/bin/recrun linked to this build's binary.
fs::path scratch_tree(const std::string& tag) {
  const fs::path dir = recrun::test::temp_dir(tag);
  const fs::path src = fs::path(RECRUN_SOURCE_DIR) / "experiments";
  fs::create_directories(dir / "experiments" / "data");
  for (const auto& e : fs::directory_iterator(src))
    if (e.is_regular_file()) fs::copy_file(e.path(), dir / "experiments" / e.path().filename());
  for (const auto& e : fs::directory_iterator(src / "data"))
    if (e.is_directory()) {
      // Each data file linked, so that caches written beside the data stay in the scratch tree.
      const fs::path to = dir / "experiments" / "data" / e.path().filename();
      fs::create_directories(to);
      for (const auto& f : fs::directory_iterator(e.path()))
        if (f.is_regular_file()) fs::create_symlink(f.path(), to / f.path().filename());
    }
  fs::create_directories(dir / "build" / "bin");
  fs::create_symlink(RECRUN_BIN, dir / "build" / "bin" / "recrun");
  // The benchmarks the docs show, so that their commands run too.
  for (const auto& e : fs::directory_iterator(fs::path(RECRUN_BINARY_DIR) / "bin"))
    if (e.path().filename().string().rfind("bench_", 0) == 0)
      fs::create_symlink(e.path(), dir / "build" / "bin" / e.path().filename());
  fs::create_directories(dir / "tmp");
  return dir;
}

// The command as the test runs it: recrun is this build's, /tmp/ is the scratch tree's, and a
// sweep of a whole experiment is validated (--dry-run) instead of run for minutes.
std::string as_run(std::string cmd, const fs::path& tree) {
  if (cmd.rfind("recrun ", 0) == 0) cmd = "build/bin/recrun " + cmd.substr(7);
  cmd = std::regex_replace(cmd, std::regex("(^|\\s)/tmp/"), "$1" + (tree / "tmp").string() + "/");
  if (cmd.rfind("build/bin/recrun sweep ", 0) == 0 && cmd.find("--dry-run") == std::string::npos)
    cmd += " --dry-run";
  return cmd;
}

std::string where(const std::string& file, int line) { return fmt::format("{}:{}", file, line); }

void run_commands_of(const fs::path& doc, const fs::path& tree, int& ran) {
  for (const auto& b : blocks_of(doc, shown_name(doc))) {
    if (b.lang != "sh") continue;
    for (const auto& [line, cmd] : commands_of(b)) {
      if (not_run_here(cmd)) continue;
      const std::string shell = fmt::format("cd {} && {}", recrun::test::shell_quote(tree.string()),
                                            as_run(cmd, tree));
      const auto r = recrun::test::run_command(shell);
      ++ran;
      EXPECT_EQ(r.exit_code, 0) << where(b.file, line) << ": `" << cmd << "` failed:\n"
                                << r.output;
    }
  }
}

// One test per document (so that ctest runs them side by side, each well inside its time limit),
// each in a scratch tree of its own, its commands in document order: later commands may use what
// earlier ones made (README's sqlite3 query reads the results of its `recrun run`).
class DocsShellCommands : public ::testing::TestWithParam<fs::path> {};

TEST_P(DocsShellCommands, RunAsWritten) {
  const fs::path& doc = GetParam();
  int ran = 0;
  const fs::path tree = scratch_tree(doc.stem().string());
  run_commands_of(doc, tree, ran);
  SUCCEED() << ran << " commands of " << shown_name(doc);
}

INSTANTIATE_TEST_SUITE_P(EveryDocument, DocsShellCommands, ::testing::ValuesIn(doc_files()),
                         [](const ::testing::TestParamInfo<fs::path>& info) {
                           std::string name = info.param.stem().string();
                           for (auto& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

TEST(DocsCommands, TheDocsHaveShellCommands) {
  int commands = 0;
  for (const auto& doc : doc_files())
    for (const auto& b : blocks_of(doc, shown_name(doc)))
      if (b.lang == "sh") commands += static_cast<int>(commands_of(b).size());
  EXPECT_GE(commands, 15) << "the docs' commands were not found";
}

TEST(DocsCommands, EveryCommandNotRunHereIsStillInTheDocs) {
  std::vector<std::string> all;
  for (const auto& doc : doc_files())
    for (const auto& b : blocks_of(doc, shown_name(doc)))
      if (b.lang == "sh")
        for (const auto& [line, cmd] : commands_of(b)) all.push_back(cmd);
  for (const auto& [cmd, why] : kNotRunHere)
    EXPECT_NE(std::find(all.begin(), all.end(), cmd), all.end())
        << "`" << cmd << "` is listed as not run here (" << why << ") but no doc has it any more";
}

// A ```toml block as an experiment file: a whole file as it stands; a fragment inside a minimal
// experiment (its [experiment] and [data] tables, and a popularity group when the fragment has
// no group). A fragment without any table header cannot be placed: the doc must say its table.
std::optional<std::string> as_experiment(const std::string& text, int n) {
  const bool has_group = text.find("[[group]]") != std::string::npos ||
                         text.find("[groups.") != std::string::npos;
  const bool has_data = text.find("[data]") != std::string::npos;
  if (has_group && has_data) return text;
  if (!std::regex_search(text, std::regex(R"(^\s*\[)", std::regex::multiline)))
    return std::nullopt;
  std::string out;
  if (text.find("[experiment]") == std::string::npos)
    out += fmt::format("[experiment]\nname = \"doc_fragment_{}\"\n", n);
  if (!has_data) out += "[data]\npath = \"data/ml-latest-small\"\n";
  out += text;
  if (!has_group) out += "\n[[group]]\nmodel = \"popularity\"\n";
  return out;
}

TEST(DocsCommands, EveryExperimentExampleAndFragmentValidates) {
  int checked = 0;
  for (const auto& doc : doc_files()) {
    const fs::path tree = scratch_tree(doc.stem().string() + "-toml");
    int n = 0;
    for (const auto& b : blocks_of(doc, shown_name(doc))) {
      if (b.lang != "toml") continue;
      std::string raw;
      for (const auto& [no, l] : b.lines) raw += l + "\n";
      const auto text = as_experiment(raw, n);
      if (!text) {
        ADD_FAILURE() << where(b.file, b.line) << ": a TOML block without a table header; show "
                      << "the table it belongs in ([[group]], [group.params], [protocol], ...)";
        continue;
      }
      const fs::path file = tree / "experiments" / fmt::format("doc_example_{}.toml", n++);
      std::ofstream(file) << *text;
      const auto r = recrun::test::run_command(
          fmt::format("cd {} && build/bin/recrun sweep {} --dry-run",
                      recrun::test::shell_quote(tree.string()),
                      recrun::test::shell_quote(file.string())));
      ++checked;
      EXPECT_EQ(r.exit_code, 0) << where(b.file, b.line) << ": the example experiment does not "
                                << "validate:\n" << r.output;
    }
  }
  EXPECT_GE(checked, 1);
}

// Every file of the tree a doc names exists: `experiments/x.toml`, `tests/.../test_y.cpp`,
// `docs/z.md`, ... Names with placeholders (<name>, NAME, *, {a,b}) and outputs (results/,
// build/, /tmp) are not files of the tree.
TEST(DocsCommands, EveryPathADocNamesExists) {
  const fs::path root = RECRUN_SOURCE_DIR;
  const std::regex path_re(
      R"((?:^|[\s`(\["'])((?:experiments|docs|framework|plugins|tests|bench|scripts|cmake|examples)/[A-Za-z0-9_.+/-]*[A-Za-z0-9_])(?=$|[\s`)\]"',:;]))");
  int checked = 0;
  for (const auto& doc : doc_files()) {
    std::ifstream in(doc);
    std::string line;
    int no = 0;
    while (std::getline(in, line)) {
      ++no;
      for (std::sregex_iterator it(line.begin(), line.end(), path_re), end; it != end; ++it) {
        std::string p = (*it)[1];
        while (!p.empty() && p.back() == '.') p.pop_back();  // the end of a sentence
        if (p.find_first_of("<>*{}") != std::string::npos) continue;
        if (std::any_of(p.begin(), p.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); }) &&
            p.find("README") == std::string::npos && p.find("CMakeLists") == std::string::npos &&
            p.find("SHA256SUMS") == std::string::npos)
          continue;  // EXPERIMENT, NAME, DIR: placeholders
        ++checked;
        EXPECT_TRUE(fs::exists(root / p)) << where(shown_name(doc), no) << ": names " << p
                                          << ", which is not in the tree";
      }
    }
  }
  EXPECT_GE(checked, 20);
}

// Every tag of docs/tensorboard.md's table is one that a real run writes (<metric>, <name> and
// <feature> stand for any text). The gate's tags need a gate-fusion run, which the BERT4Rec
// fusion tests check; they are left out here.
TEST(DocsCommands, EveryTagTheTensorBoardDocNamesIsWritten) {
  const fs::path tree = scratch_tree("tags");
  const auto made = recrun::test::run_command(fmt::format(
      "cd {} && build/bin/recrun run --model multivae --data experiments/data/ml-latest-small "
      "--set epochs=2 --set hidden=32 --set latent=8 --threads 1",
      recrun::test::shell_quote(tree.string())));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::set<std::string> written;
  for (const auto& entry : fs::recursive_directory_iterator(tree / "results" / "tensorboard"))
    if (entry.path().filename().string().rfind("events.out.tfevents", 0) == 0)
      for (const auto& e : recrun::tensorboard::read_event_file(entry.path()))
        for (const auto& v : e.values) written.insert(v.tag);
  ASSERT_FALSE(written.empty());
  std::ifstream in(fs::path(RECRUN_SOURCE_DIR) / "docs" / "tensorboard.md");
  std::string line;
  bool in_tags = false;
  int checked = 0;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.rfind("## ", 0) == 0) in_tags = line == "## Tags";
    if (!in_tags || line.rfind("| `", 0) != 0) continue;
    const std::string tag = line.substr(3, line.find('`', 3) - 3);
    if (tag.find("gate") != std::string::npos) continue;
    const std::regex pattern(std::regex_replace(tag, std::regex("<[a-z]+>"), ".+"));
    ++checked;
    EXPECT_TRUE(std::any_of(written.begin(), written.end(),
                            [&](const std::string& t) { return std::regex_match(t, pattern); }))
        << "docs/tensorboard.md:" << no << ": no run writes a tag like " << tag;
  }
  EXPECT_GE(checked, 6);
}

TEST(DocsCommands, EverySqlExampleRunsAgainstARealResultsDb) {
  const fs::path tree = scratch_tree("sql");
  // A real results.db: one run of each kind the queries look at (a finished run with epochs).
  const auto made = recrun::test::run_command(fmt::format(
      "cd {} && build/bin/recrun run --model multivae --data experiments/data/ml-latest-small "
      "--set epochs=2 --set hidden=32 --set latent=8 --threads 1",
      recrun::test::shell_quote(tree.string())));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  int checked = 0;
  for (const auto& doc : doc_files())
    for (const auto& b : blocks_of(doc, shown_name(doc))) {
      if (b.lang != "sql") continue;
      std::string sql;
      for (const auto& [no, l] : b.lines) sql += l + "\n";
      const fs::path file = tree / "query.sql";
      std::ofstream(file) << sql;
      const auto r = recrun::test::run_command(fmt::format(
          "cd {} && sqlite3 -bail -readonly results/results.db < query.sql",
          recrun::test::shell_quote(tree.string())));
      ++checked;
      EXPECT_EQ(r.exit_code, 0) << where(b.file, b.line) << ": the query fails:\n" << r.output;
      EXPECT_EQ(r.output.find("Error"), std::string::npos) << where(b.file, b.line) << r.output;
    }
  EXPECT_GE(checked, 3);
}

// The docs show each benchmark's flags: every bench answers --help with its usage at once, and a
// flag it does not know, or one without its value, is refused (exit 2) before any work starts,
// instead of being ignored while the bench runs for minutes with its defaults.
TEST(DocsCommands, EveryBenchAnswersHelpAndRefusesFlagsItDoesNotKnow) {
  int checked = 0;
  for (const auto& e : fs::directory_iterator(fs::path(RECRUN_BINARY_DIR) / "bin")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("bench_", 0) != 0) continue;
    const std::string bin = recrun::test::shell_quote(e.path().string());
    const auto help = recrun::test::run_command("timeout 20 " + bin + " --help");
    EXPECT_EQ(help.exit_code, 0) << name << " --help:\n" << help.output;
    EXPECT_NE(help.output.find("usage: " + name + " ["), std::string::npos)
        << name << " --help:\n" << help.output;
    const auto unknown = recrun::test::run_command("timeout 20 " + bin + " --no-such-flag 1");
    EXPECT_EQ(unknown.exit_code, 2) << name << ":\n" << unknown.output;
    EXPECT_NE(unknown.output.find("unknown option --no-such-flag"), std::string::npos)
        << name << ":\n" << unknown.output;
    const auto lone = recrun::test::run_command("timeout 20 " + bin + " --threads");
    EXPECT_EQ(lone.exit_code, 2) << name << " --threads:\n" << lone.output;
    EXPECT_NE(lone.output.find("--threads needs a value"), std::string::npos)
        << name << ":\n" << lone.output;
    ++checked;
  }
  EXPECT_GE(checked, 13);
}

}  // namespace
