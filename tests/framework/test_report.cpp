// The HTML report's parts: escaping, chart geometry, the gathering of an experiment from a real
// results.db (configurations, mean ± std over seeds, best per group, failures), and the data
// explorer's statistics on a hand-built data set. Browsers render the pages in
// tests/e2e/test_report_e2e.cpp.
#include <gtest/gtest.h>

#include <tuple>

#include <cmath>
#include <ctime>
#include <regex>
#include <string>

#include "data/stats.hpp"
#include "recrun/dataset.hpp"
#include "recrun/error.hpp"
#include "report/experiment_report.hpp"
#include "report/html.hpp"
#include "results/results_store.hpp"
#include "results/search_store.hpp"
#include "support/plugins.hpp"

namespace {

namespace html = recrun::report::html;
using namespace recrun::results;

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ReportHtml, EscapesMarkupQuotesAndBrokenUtf8) {
  EXPECT_EQ(html::escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  EXPECT_EQ(html::escape("Amélie\tok\n"), "Amélie\tok\n");  // valid UTF-8 and whitespace kept
  // A stray byte, an overlong '/', a surrogate and a control character: each byte is U+FFFD.
  EXPECT_EQ(html::escape("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(html::escape("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(html::escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(html::escape(std::string("x\x01y")), "x\xEF\xBF\xBDy");
  EXPECT_EQ(html::escape("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut-off sequence
}

TEST(ReportHtml, FileStemsAreSafeNames) {
  EXPECT_EQ(html::file_stem("gate_fusion"), "gate_fusion");
  EXPECT_EQ(html::file_stem("../etc/x y"), "_.._etc_x_y");
  EXPECT_EQ(html::file_stem(""), "_");
}

TEST(ReportHtml, LineChartPlacesPointsWhereTheAxesSay) {
  // y from 0 to 1 gives ticks 0, 0.2, ..., 1 and an axis exactly 0..1; the default frame is 380 x
  // 230 with margins left 56, right 14, top 26, bottom 40: the plot spans x 56..366, y 26..190.
  html::ChartOptions o;
  o.title = "t";
  o.kind = "curve";
  const std::string svg = html::line_chart(
      {{.name = "s", .points = {{0, 0}, {0.5, NAN}, {1, 1}}, .errors = {}, .line = true, .colour = {}, .emphasis = false, .marks = {}}}, o);
  EXPECT_NE(svg.find("cx=\"56.0\" cy=\"190.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("cx=\"366.0\" cy=\"26.0\""), std::string::npos) << svg;
  EXPECT_EQ(count_of(svg, "<circle"), 2);  // the NaN point is not drawn
  // ...and it breaks the line into two sub-paths.
  EXPECT_NE(svg.find("d=\"M56.0 190.0 M366.0 26.0 \""), std::string::npos) << svg;
  for (const char* tick : {">0<", ">0.2<", ">0.4<", ">0.6<", ">0.8<", ">1<"})
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  EXPECT_NE(svg.find("data-kind=\"curve\""), std::string::npos);
}

TEST(ReportHtml, ChartsOfNothingOrConstantsStillDraw) {
  html::ChartOptions o;
  const std::string empty = html::line_chart({{.name = "none", .points = {}, .errors = {}, .line = true, .colour = {}, .emphasis = false, .marks = {}}}, o);
  EXPECT_NE(empty.find("no values"), std::string::npos);
  const std::string flat = html::line_chart(
      {{.name = "c", .points = {{1, 5}, {2, 5}}, .errors = {}, .line = true, .colour = {}, .emphasis = false, .marks = {}}}, o);
  EXPECT_EQ(count_of(flat, "<circle"), 2);
  EXPECT_EQ(flat.find("nan"), std::string::npos) << flat;
  const std::string bars = html::bar_chart({{.label = "<b>", .value = 3, .tooltip = {}}, {.label = "x", .value = INFINITY, .tooltip = {}}}, o);
  EXPECT_EQ(count_of(bars, "<rect class=\"bar\""), 2);
  EXPECT_NE(bars.find("&lt;b&gt;"), std::string::npos);
  EXPECT_EQ(bars.find("<b>"), std::string::npos);
}

TEST(ReportHtml, WrappedLabelsKeepEveryCharacter) {
  const std::string label = "features=[genre,year,title] fusion=gate";
  const auto lines = html::wrap_label(label, 12);
  std::string joined;
  for (const auto& l : lines) {
    EXPECT_LE(l.size(), 12u) << l;
    joined += (joined.empty() || joined.back() == ',' || joined.back() == '=' ? "" : " ") + l;
  }
  EXPECT_EQ(joined, label);
  EXPECT_EQ(lines, (std::vector<std::string>{"features=", "[genre,year,", "title]", "fusion=gate"}));
  EXPECT_EQ(html::wrap_label("[genre,year]", 8), (std::vector<std::string>{"[genre,", "year]"}));
  EXPECT_EQ(html::wrap_label("0123456789", 4), (std::vector<std::string>{"0123", "4567", "89"}));
  EXPECT_EQ(html::wrap_label("", 4), (std::vector<std::string>{""}));
}

TEST(ReportHtml, GroupedBarsStartAtZeroAndDrawTheirReferences) {
  html::ChartOptions o;
  o.kind = "grid";
  o.references = {{"baseline", 0.25, "#111"}};
  const std::string svg = html::grouped_bar_chart(
      {"[genre]", "[genre,year,title]"},
      {{"fusion=add", {0.2, 0.4}, {0, 0.05}, ""}, {"fusion=gate", {0.3, NAN}, {}, "#123456"}}, o);
  EXPECT_NE(svg.find("data-groups=\"2\" data-bars=\"3\""), std::string::npos) << svg;  // NaN: no bar
  EXPECT_NE(svg.find("data-group=\"[genre,year,title]\" data-series=\"fusion=add\" data-value=\"0.4\""), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#123456\""), std::string::npos);
  EXPECT_NE(svg.find("text-anchor=\"end\">0</text>"), std::string::npos);  // the axis starts at 0
  EXPECT_NE(svg.find("<line class=\"reference\" data-label=\"baseline\" data-value=\"0.25\""), std::string::npos);
  EXPECT_NE(svg.find("legend-entry reference"), std::string::npos);
  EXPECT_EQ(count_of(svg, "class=\"errbar\""), 1);
  EXPECT_EQ(svg.find("…"), std::string::npos);
}

TEST(ReportHtml, ANarrowRangeIsZoomedAndSaysSoUnlessAnOriginIsGiven) {
  html::ChartOptions o;
  html::Series s;
  s.name = "w";
  s.points = {{1, 0.47}, {2, 0.53}};
  const std::string zoomed = html::line_chart({s}, o);
  EXPECT_NE(zoomed.find("data-zoomed=\"1\""), std::string::npos);
  EXPECT_NE(zoomed.find("y axis zoomed: "), std::string::npos);
  o.y_min = 0;
  o.y_max = 1;
  const std::string whole = html::line_chart({s}, o);
  EXPECT_EQ(whole.find("data-zoomed"), std::string::npos);
  EXPECT_NE(whole.find("text-anchor=\"end\">0</text>"), std::string::npos);
  EXPECT_NE(whole.find("text-anchor=\"end\">1</text>"), std::string::npos);
}

TEST(ReportHtml, TablesCarrySortKeysAndEscapedText) {
  const std::string t = html::table("t1", {"name", "value"},
                                    {{html::Cell("<i>"), html::Cell("0.5", 0.5, "num")},
                                     {html::Cell("b"), html::Cell("–", NAN, "num")}});
  EXPECT_NE(t.find("<table id=\"t1\" class=\"sortable"), std::string::npos);
  EXPECT_NE(t.find("<td>&lt;i&gt;</td>"), std::string::npos) << t;
  EXPECT_NE(t.find("data-sort=\"0.5\""), std::string::npos);
  EXPECT_EQ(count_of(t, "data-sort="), 1);  // NaN has no sort key: it sorts last
}

TEST(ReportHtml, PagesForbidEveryFetchAndReferenceNoUrl) {
  const std::string p = html::page("x", "<p>body</p>");
  EXPECT_NE(p.find("Content-Security-Policy"), std::string::npos);
  EXPECT_NE(p.find("default-src 'none'"), std::string::npos);
  for (const char* url : {"http:", "https:", "file:", "src=", "href=\"/"})
    EXPECT_EQ(p.find(url), std::string::npos) << url;
}

TEST(ReportStats, MeanStdIsTheSampleStandardDeviation) {
  const auto m = recrun::report::mean_std({1, 2, 3, 4, NAN});
  EXPECT_EQ(m.n, 4u);
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.stdev, std::sqrt(5.0 / 3.0), 1e-12);  // sum of squares 5, over n - 1 = 3
  EXPECT_EQ(recrun::report::mean_std({7}).stdev, 0.0);
  EXPECT_EQ(recrun::report::mean_std({}).n, 0u);
}

// A results.db with one experiment: ease at two lambdas x two seeds, popularity once, and a
// failed trial whose reason is markup.
class ReportGather : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = recrun::test::temp_dir("report") / "results.db";
    ResultsStore store(db_);
    const auto id = store.upsert_experiment("exp", "# <script>alert(1)</script>\n[experiment]\n", "h1");
    const auto add = [&](std::string key, std::string group, std::string model,
                         std::vector<Param> params, std::int64_t seed, double valid, double test) {
      CompletedRun run;
      run.spec = {.trial_key = key, .group_name = group, .model = model, .data_path = "data",
                  .data_fingerprint = "fp123",
                  .protocol_json = R"({"metrics":["Hit","NDCG"],"ks":[10],"monitor":"NDCG@10"})",
                  .seed = seed, .params = std::move(params), .experiment_id = id};
      run.finish.valid_metrics = {{"NDCG@10", valid}, {"Hit@10", 2 * valid}};
      run.finish.test_metrics = {{"NDCG@10", test}, {"Hit@10", 2 * test}};
      run.finish.epochs_run = 2;
      run.epochs = {{.epoch = 1, .split = SplitName::train, .metrics = {{"loss", 3.0}}, .wall_time = 1.0},
                    {.epoch = 2, .split = SplitName::train, .metrics = {{"loss", 2.0}}, .wall_time = 2.0},
                    {.epoch = 2, .split = SplitName::valid,
                     .metrics = {{"NDCG@10", valid}, {"val_gate/id", 0.7}, {"val_gate/genre", 0.3}},
                     .wall_time = 2.0}};
      ASSERT_TRUE(store.record_run(run));
    };
    add("k1", "ease", "ease", {Param::of_float("lambda", 10)}, 1, 0.2, 0.1);
    add("k2", "ease", "ease", {Param::of_float("lambda", 10)}, 2, 0.4, 0.3);
    add("k3", "ease", "ease", {Param::of_float("lambda", 100)}, 1, 0.5, 0.4);
    add("k4", "ease", "ease", {Param::of_float("lambda", 100)}, 2, 0.5, 0.2);
    add("k5", "pop", "popularity", {}, 1, 0.1, 0.05);
    TrialSpec bad{.trial_key = "k6", .group_name = "pop", .model = "popularity", .seed = 9,
                  .experiment_id = id};
    store.register_trials({bad});
    ASSERT_TRUE(store.fail("k6", "boom <b>bold</b> & \"quoted\""));
  }
  std::filesystem::path db_;
};

TEST_F(ReportGather, ConfigurationsAverageTheirSeedsAndTheBestIsPickedByValidation) {
  ResultsStore store(db_);
  const auto d = recrun::report::gather_experiment(store, "exp");
  EXPECT_EQ(d.monitor, "NDCG@10");
  EXPECT_EQ(d.test_columns, (std::vector<std::string>{"Hit@10", "NDCG@10"}));
  ASSERT_EQ(d.configurations.size(), 3u);  // ease lambda=10, ease lambda=100, pop
  EXPECT_EQ(d.swept_params.at("ease"), std::vector<std::string>{"lambda"});
  EXPECT_TRUE(d.swept_params.at("pop").empty());
  const auto& c10 = d.configurations[0];
  EXPECT_EQ(c10.label, "lambda=10");
  EXPECT_EQ(c10.finished, 2u);
  EXPECT_NEAR(c10.valid.at("NDCG@10").mean, 0.3, 1e-12);
  EXPECT_NEAR(c10.valid.at("NDCG@10").stdev, std::sqrt(0.02), 1e-12);  // (0.1² + 0.1²) / 1
  EXPECT_NEAR(d.configurations[1].test.at("NDCG@10").mean, 0.3, 1e-12);
  EXPECT_NEAR(d.configurations[1].test.at("NDCG@10").stdev, std::sqrt(0.02), 1e-12);
  // pop has one finished seed of two runs (k6 failed).
  EXPECT_EQ(d.configurations[2].runs.size(), 2u);
  EXPECT_EQ(d.configurations[2].finished, 1u);
  // Best per group by mean validation NDCG@10: lambda=100 (0.5 > 0.3), though its test is lower.
  EXPECT_EQ(recrun::report::best_configurations(d), (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(d.curves.at("k1").size(), 5u);
}

TEST_F(ReportGather, ThePageEscapesEverythingItShows) {
  ResultsStore store(db_);
  const auto d = recrun::report::gather_experiment(store, "exp");
  const std::string page = recrun::report::render_experiment_report(d, "db & <x>", "now");
  EXPECT_NE(page.find("boom &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"), std::string::npos);
  EXPECT_NE(page.find("# &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_EQ(page.find("<b>bold"), std::string::npos);
  EXPECT_NE(page.find("db &amp; &lt;x&gt;"), std::string::npos);
  // The tables, charts and sections a reader looks for.
  EXPECT_NE(page.find("0.3000 ± 0.1414"), std::string::npos);  // lambda=10 validation
  EXPECT_NE(page.find("<table id=\"best\""), std::string::npos);
  EXPECT_NE(page.find("<table id=\"failures\""), std::string::npos);
  EXPECT_NE(page.find("data-kind=\"param\" data-group=\"ease\""), std::string::npos);
  EXPECT_EQ(count_of(page, "data-kind=\"gate\""), 5);  // every run here logged gate weights
  EXPECT_EQ(count_of(page, "data-metric=\"loss\""), 2);  // one chart per group (ease, pop), every run on it
  // The popularity run is the floor; the EASE configurations are above it.
  ASSERT_TRUE(d.popularity);
  EXPECT_EQ(d.popularity->trial_key, "k5");
  EXPECT_EQ(count_of(page, ">above</td>"), 3);  // the best EASE row, then both EASE configurations
  EXPECT_EQ(count_of(page, ">(the floor)</td>"), 2);  // its row in both tables
  EXPECT_NE(page.find("fp123"), std::string::npos);
}

// A TPE + ASHA search of three trials, one of them pruned at its first rung: the report's search
// section draws the best finished value against trials and seconds, and every trial's curve
// with the pruning point marked.
TEST(ReportSearch, BestAgainstTrialsAndSecondsAndCurvesWithPruningPoints) {
  const auto db = recrun::test::temp_dir("report-search") / "results.db";
  ResultsStore store(db);
  const auto id = store.upsert_experiment("srch", "[experiment]\n", "h");
  recrun::results::SearchStore searches(store);
  searches.register_search({.search_key = "s1", .experiment = "srch", .group_name = "seq",
                            .method = "tpe",
                            .spec_json = R"({"method":"tpe","pruner":"asha","min_epochs":1,)"
                                         R"("reduction_factor":3,"max_epochs":9})"});
  // (key, curve of validation NDCG@10 by epoch 1.., pruned, seconds)
  const std::vector<std::tuple<std::string, std::vector<double>, bool, double>> trials = {
      {"t0", {0.10, 0.20, 0.25}, false, 30},
      {"t1", {0.05}, true, 10},
      {"t2", {0.15, 0.30, 0.28}, false, 40}};
  std::vector<recrun::results::SearchLink> links;
  std::int64_t index = 0;
  for (const auto& [key, curve, pruned, seconds] : trials) {
    CompletedRun run;
    run.spec = {.trial_key = key, .group_name = "seq", .model = "sasrec", .data_path = "data",
                .data_fingerprint = "fp",
                .protocol_json = R"({"metrics":["NDCG"],"ks":[10],"monitor":"NDCG@10"})",
                .seed = 1, .params = {Param::of_float("lr", 0.001 * (index + 1))},
                .experiment_id = id};
    const auto best = std::max_element(curve.begin(), curve.end());
    run.finish.valid_metrics = {{"NDCG@10", *best}};
    if (!pruned) run.finish.test_metrics = {{"NDCG@10", *best / 2}};
    run.finish.best_epoch = best - curve.begin() + 1;
    run.finish.epochs_run = static_cast<std::int64_t>(curve.size());
    run.finish.total_seconds = seconds;
    run.finish.pruned = pruned;
    for (std::size_t e = 0; e < curve.size(); ++e)
      run.epochs.push_back({.epoch = static_cast<std::int64_t>(e) + 1, .split = SplitName::valid,
                            .metrics = {{"NDCG@10", curve[e]}}, .wall_time = 1.0 + e});
    ASSERT_TRUE(store.record_run(run));
    links.push_back({.index = index++, .trial_key = key, .point_json = "{}"});
  }
  searches.link("s1", links);

  const auto d = recrun::report::gather_experiment(store, "srch");
  ASSERT_EQ(d.searches.size(), 1u);
  EXPECT_EQ(d.searches[0].trials.size(), 3u);
  const std::string page = recrun::report::render_experiment_report(d, "db", "now");
  EXPECT_NE(page.find("<section id=\"search\">"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"#search\">"), std::string::npos);
  EXPECT_NE(page.find("group seq: tpe search with asha pruning"), std::string::npos) << page;
  // 3 + 1 + 3 epochs where unpruned trials would train 3 x 9; seconds 30 + 10 + 40.
  EXPECT_NE(page.find("3 trials ended: 2 finished, 1 pruned; 80 trial seconds; 7 epochs trained "
                      "where the same trials unpruned would train 27 (26%); best 0.3000 (trial t2)"),
            std::string::npos)
      << page;
  EXPECT_EQ(count_of(page, "data-kind=\"search-trials\""), 1);
  EXPECT_EQ(count_of(page, "data-kind=\"search-seconds\""), 1);
  EXPECT_NE(page.find("data-kind=\"search-curves\" data-pruned=\"1\" data-search=\"s1\" "
                      "data-trials=\"3\""),
            std::string::npos)
      << page;
  // A pruned trial never counts as a best: the best-so-far line stays at 0.25 after it.
  EXPECT_NE(page.find("pruned here"), std::string::npos);
  // A report of an experiment without searches has no such section.
  ResultsStore plain(recrun::test::temp_dir("report-plain") / "results.db");
  plain.upsert_experiment("p", "[experiment]\n", "h");
  const std::string none = recrun::report::render_experiment_report(
      recrun::report::gather_experiment(plain, "p"), "db", "now");
  EXPECT_EQ(none.find("id=\"search\""), std::string::npos);
  EXPECT_EQ(none.find("#search"), std::string::npos);
}

TEST_F(ReportGather, WaitingTrialsAreCountedAndListedWithTheirReason) {
  {
    ResultsStore store(db_);
    const auto id = store.upsert_experiment("exp", "# <script>alert(1)</script>\n[experiment]\n", "h1");
    TrialSpec waiting{.trial_key = "k7", .group_name = "blend", .model = "ensemble", .seed = 1, .experiment_id = id};
    store.register_trials({waiting});
    ASSERT_TRUE(store.fail("k7", "member 'best:ease@other' names no finished run yet", RunStatus::waiting));
  }
  ResultsStore store(db_);
  const std::string page =
      recrun::report::render_experiment_report(recrun::report::gather_experiment(store, "exp"), "db", "now");
  EXPECT_NE(page.find(", 1 waiting for their members"), std::string::npos);
  const auto failures = page.substr(page.find("<table id=\"failures\""));
  EXPECT_NE(failures.find("<td>waiting</td>"), std::string::npos) << failures.substr(0, 2000);
  EXPECT_NE(failures.find("names no finished run yet"), std::string::npos);
}

TEST_F(ReportGather, AnUnknownExperimentNamesTheOnesThere) {
  ResultsStore store(db_);
  try {
    recrun::report::gather_experiment(store, "nope");
    FAIL() << "no error";
  } catch (const recrun::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no experiment named 'nope'"), std::string::npos) << what;
    EXPECT_NE(what.find("it has: exp"), std::string::npos) << what;
  }
}

std::int64_t utc(int year, int month, int day) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return static_cast<std::int64_t>(timegm(&tm));
}

TEST(ReportExplorer, TimelineLorenzColdAndLeaveOneOutByHand) {
  recrun::DatasetBuilder b;
  b.add_interaction("u1", "a", utc(2019, 1, 15));
  b.add_interaction("u1", "b", utc(2019, 6, 10));
  b.add_interaction("u1", "c", utc(2020, 2, 20));
  b.add_interaction("u1", "d", utc(2020, 3, 5));
  b.add_interaction("u2", "a", utc(2019, 1, 20));
  b.add_interaction("u2", "b", utc(2019, 1, 21));
  b.add_interaction("u3", "a", utc(2020, 3, 1));
  b.add_interaction("u3", "e", utc(2020, 3, 2));
  b.add_interaction("u3", "f", utc(2020, 3, 3));
  b.add_category("genre", *b.item_id("a"), "Drama");
  b.add_category("genre", *b.item_id("a"), "Comedy");
  b.add_category("genre", *b.item_id("b"), "Drama");
  b.add_category("genre", *b.item_id("c"), "Horror");
  const recrun::Dataset d = b.build("toy", {}, "fp");
  const auto x = recrun::data::compute_explorer_stats(d);

  // 2019-01 .. 2020-03 spans more than 400 days: 15 monthly bins.
  EXPECT_EQ(x.timeline_unit, "month");
  ASSERT_EQ(x.timeline.size(), 15u);
  EXPECT_EQ(x.timeline.front(), std::make_pair(utc(2019, 1, 1), std::int64_t{3}));
  EXPECT_EQ(x.timeline[5], std::make_pair(utc(2019, 6, 1), std::int64_t{1}));
  EXPECT_EQ(x.timeline[13], std::make_pair(utc(2020, 2, 1), std::int64_t{1}));
  EXPECT_EQ(x.timeline.back(), std::make_pair(utc(2020, 3, 1), std::int64_t{4}));

  // Counts a3 b2 c1 d1 e1 f1; ascending 1 1 1 1 2 3 of 9.
  ASSERT_EQ(x.lorenz.size(), 7u);
  EXPECT_EQ(x.lorenz.front(), std::make_pair(0.0, 0.0));
  EXPECT_NEAR(x.lorenz[5].first, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(x.lorenz[5].second, 6.0 / 9.0, 1e-12);
  EXPECT_EQ(x.lorenz.back(), std::make_pair(1.0, 1.0));
  EXPECT_NEAR(x.long_tail_share, 6.0 / 9.0, 1e-12);  // all but the top 20% (1 item): 1+1+1+1+2

  EXPECT_EQ(x.cold_users, 3);
  EXPECT_EQ(x.items_without_interactions, 0);
  // u2 (2 interactions) is dropped; u1 and u3 give 2 targets each; training keeps a, b (u1), a (u3).
  EXPECT_EQ(x.loo_dropped_users, 1);
  EXPECT_EQ(x.loo_dropped_interactions, 2);
  EXPECT_EQ(x.loo_held_out, 4);
  EXPECT_EQ(x.loo_train_interactions, 3);
  EXPECT_EQ(x.loo_items_without_training, 4);  // c, d, e, f are only targets

  const auto& genre = x.values.at("genre");
  ASSERT_EQ(genre.size(), 3u);
  EXPECT_EQ(genre[0], std::make_pair(std::string("Drama"), std::int64_t{2}));
  EXPECT_EQ(genre[1].second + genre[2].second, 2);
}

}  // namespace
