// The HTML pages in a real browser: a small real sweep (popularity, EASE over two seeds, a short
// BERT4Rec gate-fusion run, a trial that fails) is reported with `recrun report`, the bundled
// MovieLens data with `recrun data stats --html`, and headless Chromium renders each page to a
// PNG and dumps its DOM. The tests assert the tables and charts are in the rendered DOM, that no
// script failed (the console and the page's own error record), that nothing was fetched, and
// that sorting works in the browser. Without chromium (Debian package `chromium`, installed by
// scripts/install-deps.sh) the browser tests skip, saying so.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;

using recrun::test::read_file;

namespace {

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string chromium_path() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(p)) return p;
  return {};
}

#define REQUIRE_CHROMIUM()                                                                     \
  if (chromium_path().empty())                                                                 \
  GTEST_SKIP() << "chromium is not installed (Debian package `chromium`; "                    \
                  "scripts/install-deps.sh installs it): the pages are not rendered"

// What the browser made of a page.
struct Rendered {
  int exit_code = -1;
  std::string dom;           // --dump-dom
  std::string log;           // chromium's stderr with --enable-logging=stderr --v=0
  std::vector<std::string> console;  // the console lines of the log
  fs::path png;
};

// Renders `page` (with an optional #fragment) to `png` and dumps its DOM, in a fresh profile.
Rendered render(const fs::path& page, const fs::path& png, const std::string& fragment = {}) {
  Rendered r;
  r.png = png;
  const fs::path profile = png.parent_path() / (png.stem().string() + "-profile");
  const fs::path dom = png.parent_path() / (png.stem().string() + ".dom.html");
  const fs::path log = png.parent_path() / (png.stem().string() + ".log");
  const std::string cmd = fmt::format(
      "{{ timeout 120 {} --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
      "--user-data-dir={} --window-size=1400,2400 --hide-scrollbars --enable-logging=stderr "
      "--v=0 --screenshot={} --dump-dom {} > {} 2> {}; }}",
      shell_quote(chromium_path()), shell_quote(profile.string()), shell_quote(png.string()),
      shell_quote("file://" + fs::absolute(page).string() + fragment), shell_quote(dom.string()),
      shell_quote(log.string()));
  // In braces: run_command's own trailing 2>&1 must not take chromium's stderr from the log.
  r.exit_code = run_command(cmd).exit_code;
  r.dom = read_file(dom);
  r.log = read_file(log);
  std::istringstream lines(r.log);
  for (std::string l; std::getline(lines, l);)
    if (l.find(":CONSOLE") != std::string::npos) r.console.push_back(l);
  return r;
}

// The page ran its scripts to the end, recorded no error and fetched nothing; the console is
// silent; the PNG is a real image.
void expect_clean(const Rendered& r) {
  EXPECT_EQ(r.exit_code, 0) << r.log;
  EXPECT_NE(r.dom.find("data-ready=\"1\""), std::string::npos) << "the page's script did not finish";
  EXPECT_NE(r.dom.find("data-errors=\"0\""), std::string::npos) << "the page recorded errors";
  EXPECT_NE(r.dom.find("data-resources=\"0\""), std::string::npos) << "the page fetched something";
  EXPECT_TRUE(r.console.empty()) << "console output:\n" << fmt::format("{}", fmt::join(r.console, "\n"));
  const std::string png = read_file(r.png);
  ASSERT_GT(png.size(), 10000u) << "screenshot too small to show anything";
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

// No URL of any scheme that fetches: the page is one file.
void expect_self_contained(const std::string& page) {
  for (const char* url : {"http://", "https://", "file:", "//cdn", "<link", " src="})
    EXPECT_EQ(page.find(url), std::string::npos) << "the page references " << url;
}

// The <table id="ID"> of a DOM, up to its end.
std::string table_of(const std::string& dom, const std::string& id) {
  const auto start = dom.find("<table id=\"" + id + "\"");
  if (start == std::string::npos) return {};
  const auto end = dom.find("</table>", start);
  return end == std::string::npos ? dom.substr(start) : dom.substr(start, end - start);
}

// The data-sort values of column `col` of a table's body rows, in DOM order.
std::vector<double> column_keys(const std::string& table, int col) {
  std::vector<double> out;
  const auto body = table.find("<tbody>");
  if (body == std::string::npos) return out;
  std::size_t at = body;
  while ((at = table.find("<tr", at + 1)) != std::string::npos) {
    const auto end = table.find("</tr>", at);
    if (end == std::string::npos) break;
    const std::string row = table.substr(at, end - at);
    std::size_t cell = 0;
    for (int c = 0; c <= col && cell != std::string::npos; ++c) cell = row.find("<td", cell + 1);
    if (cell == std::string::npos) continue;
    const std::regex key("^<td[^>]*data-sort=\"([^\"]+)\"");
    std::smatch m;
    const std::string td = row.substr(cell, row.find("</td>", cell) - cell);
    if (std::regex_search(td, m, key)) out.push_back(std::stod(m[1]));
  }
  return out;
}

const char* kExperiment = R"(# The report test's sweep. A comment with markup: <script>window.pwned = 1</script> & "quotes".
[experiment]
name = "report_e2e"
seeds = [1, 2]

[data]
path = "data"
source = "seed_tsv"

[protocol]
ks = [5, 10]
monitor = "NDCG@10"

[execution]
jobs = 2
checkpoints = "none"

[[group]]
name = "popularity"
model = "popularity"
seeds = [1]

[[group]]
name = "ease"
model = "ease"
[group.grid]
lambda = [10.0, 100.0]

[[group]]
name = "gate"
model = "bert4rec"
seeds = [1]
[group.params]
hidden_units = 16
num_heads = 1
num_layers = 1
max_len = 12
batch_size = 32
epochs = 3
eval_every = 1
patience = 0
features = ["genre", "year"]
fusion = "gate"

[[group]]
name = "broken"
model = "crashy"
seeds = [1]
[group.params]
mode = "throw"
fail_epoch = 1
epochs = 2
)";

class ReportE2E : public ::testing::Test {
 protected:
  // One real sweep for the whole suite.
  static void SetUpTestSuite() {
    dir_ = new fs::path(recrun::test::temp_dir("report-sweep"));
    sweep_ = new recrun::test::CommandResult();  // stays exit -1 (and fails the tests) if synth fails
    const auto synth = run_command(fmt::format(
        "cd {} && {} data synth --out data --users 80 --items 60 --interactions-per-user 10 "
        "--genres 6 --title-dim 0 --seed 5",
        shell_quote(dir_->string()), recrun::test::recrun_bin()));
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    write_file(*dir_ / "report_e2e.toml", kExperiment);
    *sweep_ = run_command(fmt::format(
        "cd {} && {} sweep report_e2e.toml --results results --threads 1 --no-live --plugin-dir {}",
        shell_quote(dir_->string()), recrun::test::recrun_bin(),
        shell_quote(recrun::test::fixture_plugin_dir().string())));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete sweep_;
  }
  static recrun::test::CommandResult report(const std::string& args) {
    return run_command(fmt::format("cd {} && {} report {}", shell_quote(dir_->string()),
                                   recrun::test::recrun_bin(), args));
  }
  static fs::path* dir_;
  static recrun::test::CommandResult* sweep_;
};
fs::path* ReportE2E::dir_ = nullptr;
recrun::test::CommandResult* ReportE2E::sweep_ = nullptr;

TEST_F(ReportE2E, ThePageShowsTablesCurvesAndGateWeightsInChromium) {
  EXPECT_EQ(sweep_->exit_code, 3) << sweep_->output;  // 3: some trials failed
  const auto counts =
      recrun::results::ResultsStore(*dir_ / "results" / "results.db").status_counts("report_e2e");
  EXPECT_EQ(counts.finished, 6) << sweep_->output;  // popularity 1, ease 2 x 2, gate 1
  EXPECT_EQ(counts.failed, 1) << sweep_->output;    // broken
  const auto made = report("report_e2e --results results");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const fs::path page = *dir_ / "results" / "reports" / "report_e2e.html";
  ASSERT_TRUE(fs::exists(page)) << made.output;
  EXPECT_NE(made.output.find(page.lexically_relative(*dir_).string()), std::string::npos) << made.output;
  const std::string html = read_file(page);
  expect_self_contained(html);
  REQUIRE_CHROMIUM();
  const Rendered r = render(page, *dir_ / "report.png");
  expect_clean(r);
  const std::string& dom = r.dom;

  // The sweep table: one best row per group that finished (the broken group did not).
  const std::string best = table_of(dom, "best");
  ASSERT_FALSE(best.empty());
  EXPECT_EQ(count_of(best, "<tr>") - 1, 3) << best;  // header + popularity, ease, gate
  for (const char* group : {">popularity<", ">ease<", ">gate<"}) EXPECT_NE(best.find(group), std::string::npos) << group;
  EXPECT_EQ(best.find(">broken<"), std::string::npos);
  // EASE ran two seeds per lambda: mean ± std; its configurations are its lambdas.
  const std::string configs = table_of(dom, "configurations");
  EXPECT_NE(configs.find(">lambda=10<"), std::string::npos) << configs;
  EXPECT_NE(configs.find(">lambda=100<"), std::string::npos) << configs;
  EXPECT_NE(configs.find(">2/2<"), std::string::npos) << configs;
  EXPECT_GE(count_of(configs, " ± "), 2 * 4) << configs;  // valid + 3 more columns at least, per lambda
  // Each metric against lambda: valid NDCG@10 and the four test metrics at 10.
  EXPECT_EQ(count_of(dom, "data-param=\"lambda\""), 5);
  // Learning curves of the BERT4Rec run: three epochs of loss and of validation.
  const std::regex loss("<svg class=\"chart curve\"[^>]*data-metric=\"loss\"[^>]*>");
  EXPECT_TRUE(std::regex_search(dom, loss)) << "no loss curve";
  const auto gate_at = dom.find("<svg class=\"chart gate\"");
  ASSERT_NE(gate_at, std::string::npos) << "no gate weight chart";
  const std::string gate = dom.substr(gate_at, dom.find("</svg>", gate_at) - gate_at);
  // The gate weighs the item id and each feature; three validations, one point each.
  for (const char* source : {"data-series=\"genre\"", "data-series=\"year\""})
    EXPECT_NE(gate.find(source), std::string::npos) << source << "\n" << gate;
  EXPECT_GE(count_of(gate, "data-points=\"3\""), 3) << gate;
  // The failed trial with its reason; the TOML shown as text, its markup escaped and inert.
  const std::string failures = table_of(dom, "failures");
  EXPECT_NE(failures.find("thrown on purpose"), std::string::npos) << failures;
  EXPECT_NE(dom.find("&lt;script&gt;window.pwned = 1&lt;/script&gt; &amp; \"quotes\""), std::string::npos);
  EXPECT_EQ(dom.find("window.pwned = 1</script>"), std::string::npos);
  EXPECT_EQ(table_of(dom, "data").find("<td>(none recorded)</td>"), std::string::npos);
}

TEST_F(ReportE2E, TablesSortInTheBrowser) {
  REQUIRE_CHROMIUM();
  const auto made = report("report_e2e --results results --out sorted.html");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // Column 4 is the validation monitor; #sort=ID:COLUMN[:desc] runs the page's own sorter.
  const Rendered down = render(*dir_ / "sorted.html", *dir_ / "sorted-desc.png", "#sort=configurations:4:desc");
  expect_clean(down);
  const auto keys = column_keys(table_of(down.dom, "configurations"), 4);
  ASSERT_EQ(keys.size(), 4u) << table_of(down.dom, "configurations");  // the broken one has none
  EXPECT_TRUE(std::is_sorted(keys.rbegin(), keys.rend())) << fmt::format("{}", fmt::join(keys, " "));
  EXPECT_NE(down.dom.find("aria-sort=\"descending\""), std::string::npos);
  const Rendered up = render(*dir_ / "sorted.html", *dir_ / "sorted-asc.png", "#sort=configurations:4");
  const auto up_keys = column_keys(table_of(up.dom, "configurations"), 4);
  EXPECT_TRUE(std::is_sorted(up_keys.begin(), up_keys.end())) << fmt::format("{}", fmt::join(up_keys, " "));
  // The file's own order is another one: the sort is the browser's doing.
  const auto file_keys = column_keys(table_of(read_file(*dir_ / "sorted.html"), "configurations"), 4);
  EXPECT_NE(file_keys, keys);
}

TEST_F(ReportE2E, BadInputsSayWhatAndWhere) {
  const auto unknown = report("nosuch --results results");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("no experiment named 'nosuch'"), std::string::npos) << unknown.output;
  EXPECT_NE(unknown.output.find("it has: report_e2e"), std::string::npos) << unknown.output;
  const auto no_db = report("report_e2e --results elsewhere");
  EXPECT_EQ(no_db.exit_code, 1);
  EXPECT_NE(no_db.output.find("no results database at 'elsewhere/results.db'"), std::string::npos) << no_db.output;
  EXPECT_FALSE(fs::exists(*dir_ / "elsewhere")) << "a report must not create a results directory";
  const auto into_dir = report("report_e2e --results results --out results");
  EXPECT_EQ(into_dir.exit_code, 1);
  EXPECT_NE(into_dir.output.find("'results' is a directory"), std::string::npos) << into_dir.output;
  const auto bad_flag = report("report_e2e --bogus");
  EXPECT_NE(bad_flag.exit_code, 0);
  EXPECT_NE(bad_flag.output.find("--bogus"), std::string::npos) << bad_flag.output;
  // None of it touched the results.
  EXPECT_EQ(recrun::results::ResultsStore(*dir_ / "results" / "results.db").status_counts("report_e2e").total(), 7);
}

// The checks above can fail: a page with a script error and an outside image is caught by
// each of them.
TEST(BrowserCheck, CatchesScriptErrorsConsoleOutputAndFetches) {
  REQUIRE_CHROMIUM();
  const fs::path dir = recrun::test::temp_dir("browser-check");
  write_file(dir / "bad.html",
             "<!DOCTYPE html><html data-errors=\"0\"><head><meta http-equiv=\"Content-Security-Policy\" "
             "content=\"default-src 'none'; script-src 'unsafe-inline'\"><script>"
             "window.addEventListener('error', function () { document.documentElement.setAttribute("
             "'data-errors', '1'); }, true);</script></head><body><img src=\"http://192.0.2.1/x.png\">"
             "<script>console.log('said something'); notAFunction();</script></body></html>");
  const Rendered r = render(dir / "bad.html", dir / "bad.png");
  EXPECT_NE(r.dom.find("data-errors=\"1\""), std::string::npos) << r.dom;
  const std::string console = fmt::format("{}", fmt::join(r.console, "\n"));
  EXPECT_NE(console.find("said something"), std::string::npos) << r.log;
  EXPECT_NE(console.find("notAFunction is not defined"), std::string::npos) << r.log;
  EXPECT_NE(console.find("violates the following Content Security Policy"), std::string::npos) << r.log;
}

TEST(DataExplorerE2E, TheBundledDataRendersInChromium) {
  const fs::path dir = recrun::test::temp_dir("explorer");
  const std::string data = fs::path(RECRUN_SOURCE_DIR) / "experiments" / "data" / "ml-latest-small";
  const auto made = run_command(fmt::format("cd {} && {} data stats {} --html --out explorer.html --no-cache",
                                            shell_quote(dir.string()), recrun::test::recrun_bin(), shell_quote(data)));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto text = run_command(fmt::format("{} data stats {} --no-cache", recrun::test::recrun_bin(), shell_quote(data)));
  ASSERT_EQ(text.exit_code, 0) << text.output;
  const std::string html = read_file(dir / "explorer.html");
  expect_self_contained(html);
  REQUIRE_CHROMIUM();
  const Rendered r = render(dir / "explorer.html", dir / "explorer.png");
  expect_clean(r);
  const std::string& dom = r.dom;
  // The numbers are the text report's.
  const std::string summary = table_of(dom, "summary");
  std::map<std::string, double> number;
  for (const char* what : {"users", "items", "interactions"}) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text.output, m, std::regex(std::string("\\n") + what + " +([0-9]+)\\n")))
        << what << "\n" << text.output;
    number[what] = std::stod(m[1]);
    EXPECT_NE(summary.find(">" + m[1].str() + "<"), std::string::npos) << what << " " << m[1] << "\n" << summary;
  }
  EXPECT_NE(dom.find("data-of=\"sequence-length\""), std::string::npos);
  EXPECT_NE(dom.find("data-of=\"item-popularity\""), std::string::npos);
  EXPECT_NE(dom.find("<svg class=\"chart lorenz\""), std::string::npos);
  // Ratings from 1996 to 2018: one bar per month.
  const std::regex timeline("<svg class=\"chart timeline\"[^>]*data-bars=\"([0-9]+)\"[^>]*data-unit=\"month\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, timeline)) << "no monthly timeline";
  EXPECT_GT(std::stoi(m[1]), 12 * 20);
  // Genres are categorical: coverage and their value distribution; MovieLens has 20 genre values.
  EXPECT_NE(table_of(dom, "coverage").find(">genre<"), std::string::npos);
  EXPECT_NE(dom.find("<svg class=\"chart values\""), std::string::npos);
  EXPECT_NE(dom.find("data-feature=\"genre\""), std::string::npos);
  // Leave-one-out: users dropped, their interactions, the held-out targets (two per kept user),
  // what is left to train on; they add up to the data set.
  const auto loo = column_keys(table_of(dom, "loo-table"), 1);
  ASSERT_EQ(loo.size(), 5u) << table_of(dom, "loo-table");
  EXPECT_EQ(loo[2], 2 * (number["users"] - loo[0]));
  EXPECT_EQ(loo[1] + loo[2] + loo[3], number["interactions"]);
  EXPECT_GT(loo[3], 0.9 * number["interactions"]);
}

TEST(DataExplorerE2E, TextStaysTheDefaultAndOutNeedsHtml) {
  const fs::path dir = recrun::test::temp_dir("explorer-flags");
  const std::string data = fs::path(RECRUN_SOURCE_DIR) / "experiments" / "data" / "ml-latest-small";
  const auto text = run_command(fmt::format("cd {} && {} data stats {} --no-cache", shell_quote(dir.string()),
                                            recrun::test::recrun_bin(), shell_quote(data)));
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("interactions per user"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(dir)) << "the text report wrote a file";
  const auto out_alone = run_command(fmt::format("cd {} && {} data stats {} --no-cache --out x.html", shell_quote(dir.string()),
                                                 recrun::test::recrun_bin(), shell_quote(data)));
  EXPECT_EQ(out_alone.exit_code, 1);
  EXPECT_NE(out_alone.output.find("--out needs --html"), std::string::npos) << out_alone.output;
  // The default file is named after the data set, in the current directory.
  const auto dflt = run_command(fmt::format("cd {} && {} data stats {} --no-cache --html", shell_quote(dir.string()),
                                            recrun::test::recrun_bin(), shell_quote(data)));
  EXPECT_EQ(dflt.exit_code, 0) << dflt.output;
  EXPECT_TRUE(fs::exists(dir / "ml-latest-small-stats.html")) << dflt.output;
}

}  // namespace
