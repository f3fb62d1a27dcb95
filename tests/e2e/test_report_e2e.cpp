// The HTML pages in a real browser: a small real sweep (popularity, EASE over two seeds, a short
// BERT4Rec reference and a features x fusion grid, an untrained BPR below the popularity floor, a
// trial that fails) and an ensemble of its EASE and popularity runs are reported with `recrun
// report`, the bundled MovieLens data with `recrun data stats --html`, and headless Chromium
// renders each page at 1400 px to a PNG and dumps its DOM. The tests assert the tables and charts
// are in the rendered DOM (grouped bars with whole labels, reference lines, one curve chart per
// group, gate weights on 0-1, the ensemble's members), that the browser's layout clipped no label
// and needed no sideways scroll (the page's own record), that no script failed (the console and
// the page's error record), that nothing was fetched, and that sorting works in the browser. Without chromium (Debian package `chromium`, installed by
// scripts/install-deps.sh) the browser tests skip, saying so.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "report/html.hpp"
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

// An ensemble of the sweep's best EASE and its popularity run, at two weightings.
// Every chart <svg class="chart KIND" ...>...</svg> of a DOM, whole.
std::vector<std::string> charts_of(const std::string& dom, const std::string& kind) {
  std::vector<std::string> out;
  const std::string open = "<svg class=\"chart " + kind + "\"";
  for (auto at = dom.find(open); at != std::string::npos; at = dom.find(open, at + 1))
    out.push_back(dom.substr(at, dom.find("</svg>", at) + 6 - at));
  return out;
}

// An attribute of the first element of `element` (its opening tag); "" when absent.
std::string attr(const std::string& element, const std::string& name) {
  const std::string tag = element.substr(0, element.find('>'));
  const std::regex re("\\s" + name + "=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(tag, m, re) ? m[1].str() : std::string();
}

// The x-axis labels of a chart, each label's lines joined.
std::vector<std::string> x_labels(const std::string& svg) {
  std::vector<std::string> out;
  const std::regex label("<text class=\"tick x-label\"[^>]*>(.*?)</text>");
  const std::regex line("<tspan[^>]*>([^<]*)</tspan>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), label); it != std::sregex_iterator(); ++it) {
    const std::string inner = (*it)[1];
    std::string text;
    for (auto l = std::sregex_iterator(inner.begin(), inner.end(), line); l != std::sregex_iterator(); ++l) text += (*l)[1];
    out.push_back(text);
  }
  return out;
}

// The reference lines of a chart: label -> value.
std::map<std::string, double> references_of(const std::string& svg) {
  std::map<std::string, double> out;
  const std::regex re("<line class=\"reference\" data-label=\"([^\"]*)\" data-value=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    out[(*it)[1]] = std::stod((*it)[2]);
  return out;
}

// The rows of a table's body: each cell's opening tag and text.
struct TableCell {
  std::string tag, text;
};
std::vector<std::vector<TableCell>> rows_of(const std::string& table) {
  std::vector<std::vector<TableCell>> rows;
  const auto body = table.find("<tbody>");
  if (body == std::string::npos) return rows;
  const std::string b = table.substr(body);
  const std::regex tr("<tr[^>]*>(.*?)</tr>"), td("(<td[^>]*>)(.*?)</td>");
  for (auto r = std::sregex_iterator(b.begin(), b.end(), tr); r != std::sregex_iterator(); ++r) {
    const std::string inner = (*r)[1];
    std::vector<TableCell> row;
    for (auto c = std::sregex_iterator(inner.begin(), inner.end(), td); c != std::sregex_iterator(); ++c)
      row.push_back({(*c)[1], (*c)[2]});
    rows.push_back(std::move(row));
  }
  return rows;
}

// The header texts of a table.
std::vector<std::string> headers_of(const std::string& table) {
  std::vector<std::string> out;
  const std::regex th("<th[^>]*>([^<]*)</th>");
  const std::string head = table.substr(0, table.find("</thead>"));
  for (auto it = std::sregex_iterator(head.begin(), head.end(), th); it != std::sregex_iterator(); ++it) out.push_back((*it)[1]);
  return out;
}

std::optional<double> sort_key(const TableCell& c) {
  const std::string v = attr(c.tag, "data-sort");
  return v.empty() ? std::nullopt : std::optional<double>(std::stod(v));
}

std::optional<double> metric_of(const std::vector<recrun::results::Metric>& list, const std::string& name) {
  for (const auto& m : list)
    if (m.name == name) return m.value;
  return std::nullopt;
}

const char* kEnsemble = R"([experiment]
name = "report_e2e_ensemble"
seeds = [1]

[data]
path = "data"
source = "seed_tsv"

[protocol]
ks = [5, 10]
monitor = "NDCG@10"

[[group]]
name = "blend"
model = "ensemble"
[group.params]
members = ["best:ease@report_e2e", "best:popularity@report_e2e/popularity"]
combine = "zscore"
[group.grid]
weights = [[1.0, 0.0], [1.0, 1.0]]
)";

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
name = "no_metadata"
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

[[group]]
name = "fusion"
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
[group.grid]
fusion = ["concat", "gate"]
features = [["genre"], ["genre", "year"]]

# One epoch at a negligible learning rate: random embeddings, far below the popularity floor of
# data with a steep popularity (synth --popularity 1.5).
[[group]]
name = "untrained"
model = "bpr"
seeds = [1]
[group.params]
epochs = 1
lr = 1e-8
item_bias = false

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
        "--genres 6 --title-dim 0 --seed 5 --popularity 1.5",
        shell_quote(dir_->string()), recrun::test::recrun_bin()));
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    write_file(*dir_ / "report_e2e.toml", kExperiment);
    *sweep_ = run_command(fmt::format(
        "cd {} && {} sweep report_e2e.toml --results results --threads 1 --no-live --plugin-dir {}",
        shell_quote(dir_->string()), recrun::test::recrun_bin(),
        shell_quote(recrun::test::fixture_plugin_dir().string())));
    write_file(*dir_ / "report_e2e_ensemble.toml", kEnsemble);
    ensemble_ = new recrun::test::CommandResult(run_command(fmt::format(
        "cd {} && {} sweep report_e2e_ensemble.toml --results results --threads 1 --no-live",
        shell_quote(dir_->string()), recrun::test::recrun_bin())));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete sweep_;
    delete ensemble_;
  }
  // The report of `experiment`, rendered by Chromium once per suite.
  static const Rendered& rendered(const std::string& experiment) {
    static std::map<std::string, Rendered> pages;
    auto it = pages.find(experiment);
    if (it == pages.end()) {
      const auto made = report(experiment + " --results results --out " + experiment + ".html --force");
      EXPECT_EQ(made.exit_code, 0) << made.output;
      it = pages.emplace(experiment, render(*dir_ / (experiment + ".html"), *dir_ / (experiment + ".png"))).first;
    }
    return it->second;
  }
  static recrun::test::CommandResult report(const std::string& args) {
    return run_command(fmt::format("cd {} && {} report {}", shell_quote(dir_->string()),
                                   recrun::test::recrun_bin(), args));
  }
  static fs::path* dir_;
  static recrun::test::CommandResult* sweep_;
  static recrun::test::CommandResult* ensemble_;
};
fs::path* ReportE2E::dir_ = nullptr;
recrun::test::CommandResult* ReportE2E::sweep_ = nullptr;
recrun::test::CommandResult* ReportE2E::ensemble_ = nullptr;

TEST_F(ReportE2E, ThePageShowsTablesCurvesAndGateWeightsInChromium) {
  EXPECT_EQ(sweep_->exit_code, 3) << sweep_->output;  // 3: some trials failed
  const auto counts =
      recrun::results::ResultsStore(*dir_ / "results" / "results.db").status_counts("report_e2e");
  // popularity 1, ease 2 x 2, no_metadata 1, fusion 2 x 2, untrained 1
  EXPECT_EQ(counts.finished, 11) << sweep_->output;
  EXPECT_EQ(counts.failed, 1) << sweep_->output;  // broken
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
  EXPECT_EQ(rows_of(best).size(), 5u) << best;
  for (const char* group : {">popularity<", ">ease<", ">no_metadata<", ">fusion<", ">untrained<"})
    EXPECT_NE(best.find(group), std::string::npos) << group;
  EXPECT_EQ(best.find(">broken<"), std::string::npos);
  // EASE ran two seeds per lambda: mean ± std; its configurations are its lambdas.
  const std::string configs = table_of(dom, "configurations");
  EXPECT_NE(configs.find(">lambda=10<"), std::string::npos) << configs;
  EXPECT_NE(configs.find(">lambda=100<"), std::string::npos) << configs;
  EXPECT_NE(configs.find(">2/2<"), std::string::npos) << configs;
  EXPECT_GE(count_of(configs, " ± "), 2 * 4) << configs;  // valid + 3 more columns at least, per lambda
  // Lambda is numeric: a line over its values for valid NDCG@10 and the test metrics at 10
  // (Hit@10 = Recall@10 once, NDCG@10, MRR@10).
  EXPECT_EQ(count_of(dom, "data-param=\"lambda\""), 4);
  // Learning curves: the training loss of each group that trains by epochs.
  const std::regex loss("<svg class=\"chart curve\"[^>]*data-metric=\"loss\"[^>]*>");
  EXPECT_TRUE(std::regex_search(dom, loss)) << "no loss curve";
  // The gate of the [genre,year] run weighs the item id and both features; three validations.
  std::string gate;
  for (const auto& chart : charts_of(dom, "gate"))
    if (attr(chart, "data-features") == "3") gate = chart;
  ASSERT_FALSE(gate.empty()) << "no gate weight chart of three sources";
  for (const char* source : {"data-series=\"item\"", "data-series=\"genre\"", "data-series=\"year\""})
    EXPECT_NE(gate.find(source), std::string::npos) << source << "\n" << gate;
  EXPECT_GE(count_of(gate, "data-points=\"3\""), 3) << gate;
  // The failed trial with its reason; the TOML shown as text, its markup escaped and inert.
  const std::string failures = table_of(dom, "failures");
  EXPECT_NE(failures.find("thrown on purpose"), std::string::npos) << failures;
  EXPECT_NE(dom.find("&lt;script&gt;window.pwned = 1&lt;/script&gt; &amp; \"quotes\""), std::string::npos);
  EXPECT_EQ(dom.find("window.pwned = 1</script>"), std::string::npos);
  EXPECT_EQ(table_of(dom, "data").find("<td>(none recorded)</td>"), std::string::npos);
}

// Issue 23 point 8: features and fusion are categories, drawn as a features x fusion grid of
// bars, every label whole and inside its chart; no line joins categorical values.
TEST_F(ReportE2E, CategoricalParametersAreAGridOfBarsWithWholeLabels) {
  REQUIRE_CHROMIUM();
  const Rendered& r = rendered("report_e2e");
  expect_clean(r);
  const auto grids = charts_of(r.dom, "param-grid");
  ASSERT_EQ(grids.size(), 4u) << "valid NDCG@10; test Hit@10 = Recall@10, NDCG@10, MRR@10";
  const auto rows = rows_of(table_of(r.dom, "configurations"));
  for (const auto& g : grids) {
    EXPECT_EQ(attr(g, "data-group"), "fusion");
    EXPECT_EQ(attr(g, "data-param"), "features");
    EXPECT_EQ(attr(g, "data-within"), "fusion");
    EXPECT_EQ(attr(g, "data-groups"), "2");
    EXPECT_EQ(attr(g, "data-bars"), "4");
    EXPECT_EQ(x_labels(g), (std::vector<std::string>{"[genre]", "[genre,year]"})) << g;
    EXPECT_EQ(g.find("…"), std::string::npos) << "a label was cut short:\n" << g;
    EXPECT_EQ(attr(g, "data-clipped"), "0") << g;
    EXPECT_EQ(attr(g, "data-overlaps"), "0") << g;
    for (const char* series : {">fusion=concat<", ">fusion=gate<"}) EXPECT_NE(g.find(series), std::string::npos) << series;
  }
  // Each bar of the validation grid is its configuration's value in the table.
  const std::string& valid = grids[0];
  ASSERT_EQ(attr(valid, "data-metric"), "valid NDCG@10");
  const std::regex bar("<rect class=\"bar\" data-group=\"([^\"]*)\" data-series=\"([^\"]*)\" data-value=\"([^\"]*)\"");
  int checked = 0;
  for (auto it = std::sregex_iterator(valid.begin(), valid.end(), bar); it != std::sregex_iterator(); ++it) {
    const std::string label = fmt::format("features={} {}", (*it)[1].str(), (*it)[2].str());
    const auto row = std::find_if(rows.begin(), rows.end(), [&](const auto& row) { return row.size() > 4 && row[2].text == label; });
    ASSERT_NE(row, rows.end()) << label;
    ASSERT_TRUE(sort_key((*row)[4])) << label;
    EXPECT_DOUBLE_EQ(std::stod((*it)[3]), *sort_key((*row)[4])) << label;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
  EXPECT_EQ(r.dom.find("data-param=\"fusion\""), std::string::npos) << "fusion drawn on its own line chart";
  EXPECT_NE(r.dom.find("<html lang=\"en\" data-errors=\"0\" data-clipped=\"0\" data-overlaps=\"0\""), std::string::npos)
      << "some chart text is clipped or overlaps: " << r.dom.substr(0, 300);
}

// The baseline groups (a single configuration: popularity; no_metadata for the other BERT4Rec
// groups) are dashed reference lines, at their values, on every chart of the same metric in
// the other groups; a single configuration of another model (the untrained BPR) is not.
TEST_F(ReportE2E, BaselineGroupsAreReferenceLinesOnEveryChartOfTheirMetric) {
  REQUIRE_CHROMIUM();
  const Rendered& r = rendered("report_e2e");
  std::map<std::string, double> valid;  // group -> valid NDCG@10
  for (const auto& row : rows_of(table_of(r.dom, "best")))
    if (row.size() > 4 && sort_key(row[4])) valid[row[0].text] = *sort_key(row[4]);
  ASSERT_TRUE(valid.count("popularity") && valid.count("no_metadata")) << table_of(r.dom, "best");
  int charts = 0;
  for (const char* kind : {"param", "param-grid", "curve"})
    for (const auto& chart : charts_of(r.dom, kind)) {
      if (attr(chart, "data-metric") != "valid NDCG@10") continue;
      ++charts;
      const auto refs = references_of(chart);
      const std::string group = attr(chart, "data-group");
      ASSERT_TRUE(refs.count("popularity floor (popularity)")) << group << "\n" << chart;
      EXPECT_DOUBLE_EQ(refs.at("popularity floor (popularity)"), valid.at("popularity"));
      EXPECT_FALSE(refs.count("untrained (bpr)")) << group << ": another model's group is no baseline";
      if (group != "fusion") {
        EXPECT_FALSE(refs.count("no_metadata (bert4rec)")) << group << ": a group is its own reference, and "
                                                           << "BERT4Rec's is no baseline of EASE's";
        continue;
      }
      ASSERT_TRUE(refs.count("no_metadata (bert4rec)")) << group << "\n" << chart;
      EXPECT_DOUBLE_EQ(refs.at("no_metadata (bert4rec)"), valid.at("no_metadata"));
      EXPECT_NE(chart.find("legend-entry reference"), std::string::npos) << "the reference has no legend entry";
    }
  // ease's lambda chart, the fusion grid, the fusion and no_metadata curve charts.
  EXPECT_EQ(charts, 4);
}

// One validation chart per group, every run on it, the best run drawn thick and each run's kept
// epoch ringed; no small chart per run.
TEST_F(ReportE2E, ValidationCurvesOverlayAGroupsRunsWithTheBestMarked) {
  REQUIRE_CHROMIUM();
  const Rendered& r = rendered("report_e2e");
  std::map<std::string, std::string> by_group;
  for (const auto& chart : charts_of(r.dom, "curve"))
    if (attr(chart, "data-metric") == "valid NDCG@10") {
      EXPECT_FALSE(by_group.count(attr(chart, "data-group"))) << "two validation charts for one group";
      by_group[attr(chart, "data-group")] = chart;
    }
  // Only the groups that train by epochs; popularity, EASE and the one-epoch BPR have no curve.
  ASSERT_EQ(by_group.size(), 2u);
  ASSERT_TRUE(by_group.count("fusion") && by_group.count("no_metadata"));
  const std::string& fusion = by_group["fusion"];
  EXPECT_EQ(attr(fusion, "data-runs"), "4");
  EXPECT_EQ(count_of(fusion, "<g class=\"series"), 4) << fusion;
  EXPECT_EQ(count_of(fusion, "<g class=\"series emphasis\""), 1) << fusion;
  EXPECT_EQ(count_of(fusion, "<circle class=\"mark\""), 4) << "a ring at each run's kept epoch";
  // The thick one is the group's best configuration in the sweep table.
  std::string best_label;
  for (const auto& row : rows_of(table_of(r.dom, "best")))
    if (!row.empty() && row[0].text == "fusion") best_label = row[2].text;
  ASSERT_FALSE(best_label.empty());
  EXPECT_EQ(attr(fusion.substr(fusion.find("<g class=\"series emphasis\"")), "data-series"), "best: " + best_label);
  EXPECT_EQ(count_of(r.dom, "class=\"card run\""), 0) << "a card per run is back";
  EXPECT_EQ(count_of(r.dom, "class=\"card group-curves\""), 2);
}

// Gate weights sum to 1 over the sources: each chart runs from 0 to 1 with the equal split as
// a reference and its range said in words; a source has one colour on every chart. A line
// chart zoomed into a narrow range says so.
TEST_F(ReportE2E, GateWeightsStartAtZeroAndKeepOneColourPerSource) {
  REQUIRE_CHROMIUM();
  const Rendered& r = rendered("report_e2e");
  const auto gates = charts_of(r.dom, "gate");
  ASSERT_EQ(gates.size(), 2u);  // the two fusion = "gate" runs
  std::map<std::string, std::set<std::string>> colours;
  const std::regex series("<g class=\"series\" data-series=\"([^\"]*)\"[^>]*><path [^>]*stroke=\"([^\"]*)\"");
  for (const auto& g : gates) {
    const int sources = std::stoi(attr(g, "data-features"));
    EXPECT_NE(g.find("text-anchor=\"end\">0</text>"), std::string::npos) << "the axis does not start at 0";
    EXPECT_NE(g.find("text-anchor=\"end\">1</text>"), std::string::npos) << "the axis does not reach 1";
    const auto refs = references_of(g);
    const std::string equal = fmt::format("equal weights (1/{})", sources);
    ASSERT_TRUE(refs.count(equal)) << g;
    EXPECT_NEAR(refs.at(equal), 1.0 / sources, 1e-12);
    EXPECT_NE(g.find("<text class=\"chart-note\" x=\"56\" y=\"29\">weights "), std::string::npos) << g;
    int found = 0;
    for (auto it = std::sregex_iterator(g.begin(), g.end(), series); it != std::sregex_iterator(); ++it, ++found)
      colours[(*it)[1]].insert((*it)[2]);
    EXPECT_EQ(found, sources) << g;
  }
  const std::regex bar("<rect class=\"bar\" data-group=\"[^\"]*\" data-series=\"([^\"]*)\" data-value=\"[^\"]*\" [^>]*fill=\"([^\"]*)\"");
  const auto summary = charts_of(r.dom, "gate-summary");
  ASSERT_EQ(summary.size(), 1u);
  // Each run named by what differs between the gate runs: fusion = "gate" goes without saying.
  auto runs = x_labels(summary[0]);
  std::sort(runs.begin(), runs.end());
  EXPECT_EQ(runs, (std::vector<std::string>{"features=[genre,year]", "features=[genre]"}));
  for (auto it = std::sregex_iterator(summary[0].begin(), summary[0].end(), bar); it != std::sregex_iterator(); ++it)
    colours[(*it)[1]].insert((*it)[2]);
  ASSERT_EQ(colours.size(), 3u);  // item, genre, year
  std::set<std::string> all;
  for (const auto& [source, set] : colours) {
    EXPECT_EQ(set.size(), 1u) << source << " has several colours";
    all.insert(set.begin(), set.end());
  }
  EXPECT_EQ(all.size(), colours.size()) << "two sources share a colour";
  // A zoomed y axis says so, in the chart.
  int zoomed = 0;
  for (const char* kind : {"curve", "param"})
    for (const auto& chart : charts_of(r.dom, kind))
      if (attr(chart, "data-zoomed") == "1") {
        ++zoomed;
        EXPECT_NE(chart.find("y axis zoomed: "), std::string::npos) << chart;
      }
  EXPECT_GE(zoomed, 1) << "the training loss (a narrow range far from 0) is zoomed";
}

// Under leave-one-out Hit@k and Recall@k are equal in every run: the page says so once and
// shows each pair once (no column or chart of Recall@10, no legend entry without a line).
TEST_F(ReportE2E, HitAndRecallThatCoincideAreSaidOnce) {
  REQUIRE_CHROMIUM();
  recrun::results::ResultsStore store(*dir_ / "results" / "results.db");
  for (const auto& run : store.runs("report_e2e"))
    if (run.status == recrun::results::RunStatus::finished) {
      EXPECT_EQ(metric_of(run.test_metrics, "Hit@10"), metric_of(run.test_metrics, "Recall@10")) << run.trial_key;
    }
  const Rendered& r = rendered("report_e2e");
  EXPECT_EQ(count_of(r.dom, "id=\"same-metrics\""), 1);
  EXPECT_NE(r.dom.find("Hit@10 = Recall@10, Hit@5 = Recall@5 in every run"), std::string::npos);
  const auto headers = headers_of(table_of(r.dom, "configurations"));
  EXPECT_NE(std::find(headers.begin(), headers.end(), "test Hit@10 = Recall@10"), headers.end())
      << fmt::format("{}", fmt::join(headers, " | "));
  EXPECT_EQ(std::find(headers.begin(), headers.end(), "test Recall@10"), headers.end());
  EXPECT_EQ(r.dom.find("data-metric=\"test Recall@10\""), std::string::npos);
  EXPECT_EQ(r.dom.find("(no values)"), std::string::npos);
}

// The ensemble's page names the runs its best: references resolve to, with each member's own
// metrics, and each configuration's weights beside its result.
TEST_F(ReportE2E, TheEnsembleShowsItsResolvedMembersWeightsAndTheirMetrics) {
  ASSERT_EQ(ensemble_->exit_code, 0) << ensemble_->output;
  REQUIRE_CHROMIUM();
  recrun::results::ResultsStore store(*dir_ / "results" / "results.db");
  // The members, found here by the rule the trial uses: the best finished run by validation.
  std::map<std::string, recrun::results::RunRow> best;
  for (const auto& run : store.runs("report_e2e")) {
    if (run.status != recrun::results::RunStatus::finished || (run.model != "ease" && run.model != "popularity")) continue;
    const auto v = metric_of(run.valid_metrics, "NDCG@10");
    if (!best.count(run.model) || *v > *metric_of(best[run.model].valid_metrics, "NDCG@10")) best[run.model] = run;
  }
  ASSERT_EQ(best.size(), 2u);
  const Rendered& r = rendered("report_e2e_ensemble");
  expect_clean(r);
  const auto members = rows_of(table_of(r.dom, "members"));
  ASSERT_EQ(members.size(), 2u) << table_of(r.dom, "members");
  for (const auto& row : members) {
    ASSERT_GE(row.size(), 6u);
    const std::string model = row[2].text;
    ASSERT_TRUE(best.count(model)) << model;
    EXPECT_EQ(row[0].text, model == "ease" ? "best:ease@report_e2e" : "best:popularity@report_e2e/popularity");
    EXPECT_EQ(row[1].text, best[model].trial_key.substr(0, 12));
    EXPECT_EQ(attr(row[1].tag, "title"), best[model].trial_key);
    EXPECT_EQ(row[3].text, fmt::format("report_e2e / {}", best[model].group_name));
    EXPECT_DOUBLE_EQ(*sort_key(row[4]), *metric_of(best[model].valid_metrics, "NDCG@10"));
  }
  const auto ensembles = rows_of(table_of(r.dom, "ensembles"));
  ASSERT_EQ(ensembles.size(), 2u) << table_of(r.dom, "ensembles");
  std::set<std::string> weights;
  for (const auto& row : ensembles) weights.insert(row[2].text);
  EXPECT_EQ(weights, (std::set<std::string>{"ease × 1 + popularity × 0", "ease × 1 + popularity × 1"}));
  // Weights [1, 0] are EASE alone: the ensemble's test NDCG@10 is EASE's own in the members table.
  const auto member_headers = headers_of(table_of(r.dom, "members"));
  const auto test_column = static_cast<std::size_t>(
      std::find(member_headers.begin(), member_headers.end(), "test NDCG@10") - member_headers.begin());
  ASSERT_LT(test_column, member_headers.size());
  const auto ease = std::find_if(members.begin(), members.end(), [](const auto& row) { return row[2].text == "ease"; });
  ASSERT_NE(ease, members.end());
  EXPECT_DOUBLE_EQ(*sort_key((*ease)[test_column]), *metric_of(best["ease"].test_metrics, "NDCG@10"));
  for (const auto& row : ensembles)
    if (row[2].text == "ease × 1 + popularity × 0") {
      ASSERT_TRUE(sort_key(row[4]));
      EXPECT_NEAR(*sort_key(row[4]), *sort_key((*ease)[test_column]), 1e-6);
    }
}

// At 1400 px no table needs a sideways scroll: cells wrap, keys are shortened (the whole key
// is the tooltip).
TEST_F(ReportE2E, TablesFitThePageWidth) {
  REQUIRE_CHROMIUM();
  const Rendered& r = rendered("report_e2e");
  EXPECT_NE(r.dom.find("data-overflowing=\"0\""), std::string::npos);
  EXPECT_GE(count_of(r.dom, "<div class=\"wide\" data-overflow=\"0\">"), 5);  // best, configurations, failures, runs, data
  EXPECT_EQ(count_of(r.dom, "data-overflow=\"1\""), 0);
  for (const auto& row : rows_of(table_of(r.dom, "runs"))) {
    ASSERT_FALSE(row.empty());
    EXPECT_EQ(row[0].text.size(), 12u);
    EXPECT_EQ(attr(row[0].tag, "title").substr(0, 12), row[0].text);
  }
}

// A configuration below the best popularity run on the same data (validation or test monitor)
// is flagged; one above is not.
TEST_F(ReportE2E, ModelsBelowThePopularityFloorAreFlagged) {
  REQUIRE_CHROMIUM();
  const Rendered& r = rendered("report_e2e");
  EXPECT_NE(r.dom.find("id=\"floor-note\""), std::string::npos);
  const std::string table = table_of(r.dom, "configurations");
  const auto headers = headers_of(table);
  const auto column = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(headers.begin(), headers.end(), name) - headers.begin());
  };
  const std::size_t valid = column("valid NDCG@10"), test = column("test NDCG@10"), verdict = column("vs popularity");
  ASSERT_LT(verdict, headers.size()) << fmt::format("{}", fmt::join(headers, " | "));
  const auto rows = rows_of(table);
  const auto floor = std::find_if(rows.begin(), rows.end(), [](const auto& row) { return row[1].text == "popularity"; });
  ASSERT_NE(floor, rows.end());
  EXPECT_EQ((*floor)[verdict].text, "(the floor)");
  int flagged = 0;
  for (const auto& row : rows) {
    if (row[1].text == "popularity" || !sort_key(row[valid])) continue;
    const bool below = *sort_key(row[valid]) < *sort_key((*floor)[valid]) || *sort_key(row[test]) < *sort_key((*floor)[test]);
    EXPECT_EQ(row[verdict].tag.find("below-floor") != std::string::npos, below) << row[0].text << " " << row[2].text;
    EXPECT_EQ(row[verdict].text.rfind("below", 0) == 0, below) << row[verdict].text;
    flagged += below ? 1 : 0;
    if (row[0].text == "untrained") EXPECT_TRUE(below) << "an untrained BPR above popularity?";
  }
  EXPECT_GE(flagged, 1);
}

TEST_F(ReportE2E, TablesSortInTheBrowser) {
  REQUIRE_CHROMIUM();
  const auto made = report("report_e2e --results results --out sorted.html");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // Column 4 is the validation monitor; #sort=ID:COLUMN[:desc] runs the page's own sorter.
  const Rendered down = render(*dir_ / "sorted.html", *dir_ / "sorted-desc.png", "#sort=configurations:4:desc");
  expect_clean(down);
  const auto keys = column_keys(table_of(down.dom, "configurations"), 4);
  ASSERT_EQ(keys.size(), 9u) << table_of(down.dom, "configurations");  // the broken one has none
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
  EXPECT_EQ(recrun::results::ResultsStore(*dir_ / "results" / "results.db").status_counts("report_e2e").total(), 12);
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

// The layout record can fail too: a label outside its chart, two axis labels on top of each
// other, two legend entries on top of each other and a table wider than the page are each
// counted.
TEST(BrowserCheck, TheLayoutRecordCatchesClippedLabelsOverlapsAndWideTables) {
  REQUIRE_CHROMIUM();
  const fs::path dir = recrun::test::temp_dir("browser-layout");
  const std::string wide(600, 'x');
  write_file(dir / "layout.html",
             recrun::report::html::page(
                 "layout", "<svg class=\"chart bad\" width=\"200\" height=\"100\" viewBox=\"0 0 200 100\">"
                           "<text x=\"190\" y=\"50\">far outside the chart</text>"
                           "<text class=\"tick x-label\" x=\"50\" y=\"90\">first label</text>"
                           "<text class=\"tick x-label\" x=\"60\" y=\"90\">second label</text>"
                           "<g class=\"legend-entry\"><text x=\"10\" y=\"20\">first entry</text></g>"
                           "<g class=\"legend-entry\"><text x=\"20\" y=\"20\">second entry</text></g></svg>\n" +
                           recrun::report::html::table("t", {"a"}, {{recrun::report::html::Cell(wide, std::nullopt, "num")}})));
  const Rendered r = render(dir / "layout.html", dir / "layout.png");
  EXPECT_NE(r.dom.find("data-clipped=\"1\" data-overlaps=\"2\" data-overflowing=\"1\""), std::string::npos)
      << r.dom.substr(0, 400);
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
  // The coverage chart shows what varies: the items each feature misses, as the table counts.
  std::map<std::string, double> covered;
  for (const auto& row : rows_of(table_of(dom, "coverage")))
    if (row.size() > 2 && sort_key(row[2])) covered[row[0].text] = *sort_key(row[2]);
  ASSERT_TRUE(covered.count("year")) << table_of(dom, "coverage");
  const auto coverage = charts_of(dom, "coverage");
  ASSERT_EQ(coverage.size(), 1u);
  EXPECT_EQ(attr(coverage[0], "data-measure"), "missing");
  for (const auto& [feature, n] : covered)
    EXPECT_NE(coverage[0].find(fmt::format("<title>{}: {} of {} items have no value</title>", feature,
                                           number["items"] - n, number["items"])),
              std::string::npos)
        << feature << "\n" << coverage[0];
  // Release years: a histogram of the items with a year, from the first year to the last.
  const auto years = charts_of(dom, "numeric-histogram");
  ASSERT_EQ(years.size(), 1u);
  EXPECT_EQ(attr(years[0], "data-feature"), "year");
  EXPECT_EQ(std::stod(attr(years[0], "data-items")), covered["year"]);
  EXPECT_GE(std::stoi(attr(years[0], "data-bars")), 10);
  double in_bars = 0;
  const std::regex bar_title("<rect class=\"bar\"[^>]*><title>[^<]*: ([0-9]+) items</title>");
  for (auto it = std::sregex_iterator(years[0].begin(), years[0].end(), bar_title); it != std::sregex_iterator(); ++it)
    in_bars += std::stod((*it)[1]);
  EXPECT_EQ(in_bars, covered["year"]);
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
