// Searches: distributions and [group.search] in experiment files (every mistake refused at its
// position), drawing within bounds, the same trial list from the same seed, TPE against random
// search on an objective whose optimum is known, and the search tables of results.db (exactly
// one registration per configuration under two stores, pruning decisions taken once, the
// schema 3 -> 4 migration). The registry is built here: no plugin library is needed.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "results/results_store.hpp"
#include "results/schema.hpp"
#include "results/search_store.hpp"
#include "results/sqlite_db.hpp"
#include "support/plugins.hpp"
#include "sweep/experiment.hpp"
#include "sweep/search.hpp"
#include "sweep/search_space.hpp"
#include "sweep/tpe.hpp"
#include "sweep/trials.hpp"

namespace fs = std::filesystem;
using namespace recrun;
using namespace recrun::sweep;

namespace {

Registry search_registry() {
  Registry r;
  const auto no_model = [](const Params&, const ModelEnv&) -> std::unique_ptr<Model> {
    return nullptr;
  };
  r.add_model({.name = "seq",
               .summary = "sequential",
               .params = {int_param("hidden", 64, "width").range(8, 1024),
                          real_param("lr", 1e-3, "learning rate").range(1e-6, 1),
                          real_param("dropout", 0.1, "dropout").range(0, 0.9),
                          string_param("optimizer", "adam", "opt").one_of({"adam", "sgd"})},
               .make = no_model});
  return r;
}

const fs::path kFile = "/exp/dir/search.toml";

std::string with_header(const std::string& body) {
  return R"([experiment]
name = "s"

[data]
path = "data"

)" + body;
}

// The message of the ExperimentError that parsing and expanding `body` throws.
std::string error_of(const std::string& body) {
  try {
    const Experiment x = parse_experiment(with_header(body), kFile);
    const Registry r = search_registry();
    (void)expand_trials(x, r);
    (void)plan_searches(x, r);
  } catch (const ExperimentError& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kRandom = R"([[group]]
model = "seq"
[group.search]
method = "random"
trials = 12
seed = 7
[group.grid]
lr = { log_uniform = [1e-4, 1e-2] }
dropout = { uniform = [0.0, 0.5] }
hidden = { int_uniform = [16, 128] }
optimizer = { choice = ["adam", "sgd"] }
)";

}  // namespace

// --- parsing and validation: every mistake at its position ------------------------------------

TEST(SearchSpace, ARandomSearchExpandsIntoTrialsTimesSeeds) {
  const Experiment x = parse_experiment(with_header(kRandom), kFile);
  ASSERT_EQ(x.groups.size(), 1u);
  EXPECT_EQ(x.groups[0].space.size(), 4u);
  EXPECT_EQ(count_trials(x.groups[0], x), 12u);
  const auto trials = expand_trials(x, search_registry());
  ASSERT_EQ(trials.size(), 12u);
  for (std::size_t i = 0; i < trials.size(); ++i) {
    EXPECT_EQ(trials[i].search_index, static_cast<std::int64_t>(i));
    const double lr = trials[i].params.get_real("lr");
    EXPECT_GE(lr, 1e-4);
    EXPECT_LE(lr, 1e-2);
    const auto hidden = trials[i].params.get_int("hidden");
    EXPECT_GE(hidden, 16);
    EXPECT_LE(hidden, 128);
    EXPECT_NE(trials[i].label().find("lr="), std::string::npos);
  }
}

TEST(SearchSpace, BadDistributionsAreRefusedAtTheirPosition) {
  const auto expect = [](const std::string& body, const std::string& where,
                         const std::string& what) {
    const std::string e = error_of(body);
    EXPECT_NE(e.find(where), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  const std::string head = "[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"random\"\n"
                           "trials = 4\n[group.grid]\n";
  // The header is 6 lines; the group starts on line 7 and [group.grid]'s first key on line 13.
  expect(head + "lr = { log_uniform = [0.0, 1e-2] }\n", "search.toml:13:",
         "log_uniform bounds must be > 0");
  expect(head + "lr = { log_uniform = [-1.0, 1e-2] }\n", "search.toml:13:", "must be > 0");
  expect(head + "lr = { uniform = [0.5, 0.1] }\n", "search.toml:13:", "low < high");
  expect(head + "lr = { uniform = [0.1] }\n", "search.toml:13:", "two bounds");
  expect(head + "lr = { uniform = [\"a\", 1.0] }\n", "search.toml:13:", "must be a number");
  expect(head + "lr = { unifrom = [0.1, 0.2] }\n", "search.toml:13:", "did you mean 'uniform'");
  expect(head + "hidden = { int_uniform = [1.5, 8] }\n", "search.toml:13:",
         "int_uniform bounds must be integers");
  expect(head + "hidden = { choice = [] }\n", "search.toml:13:", "non-empty list");
  expect(head + "lr = { uniform = [0.1, 0.2], choice = [1] }\n", "search.toml:13:",
         "one distribution");
  // Against the schema: a parameter the model lacks, a type it does not take, a bound outside.
  expect(head + "lrr = { uniform = [0.1, 0.2] }\n", "search.toml:13:",
         "cannot search 'lrr': the model has no such parameter (did you mean 'lr'?)");
  expect(head + "hidden = { uniform = [16, 64] }\n", "search.toml:13:", "use int_uniform");
  expect(head + "optimizer = { uniform = [0.1, 0.2] }\n", "search.toml:13:", "use choice");
  expect(head + "dropout = { uniform = [0.0, 1.5] }\n", "search.toml:13:", "dropout");
  expect(head + "optimizer = { choice = [\"adam\", \"rmsprop\"] }\n", "search.toml:13:",
         "rmsprop");
}

TEST(SearchSpace, BadSearchTablesAreRefusedAtTheirPosition) {
  const auto expect = [](const std::string& body, const std::string& where,
                         const std::string& what) {
    const std::string e = error_of(body);
    EXPECT_NE(e.find(where), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
  };
  expect("[[group]]\nmodel = \"seq\"\n[group.grid]\nlr = { uniform = [0.1, 0.2] }\n",
         "search.toml:10:", "a grid cannot enumerate");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"random\"\n[group.grid]\n"
         "lr = [0.1]\n",
         "search.toml:10:", "needs search.trials");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"tpf\"\n", "search.toml:10:",
         "did you mean 'tpe'");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"random\"\ntrials = 0\n",
         "search.toml:11:", "between 1 and");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"random\"\ntrials = 3\n"
         "reduction_factor = 3\n[group.grid]\nlr = [0.1]\n",
         "search.toml:12:", "pruner setting");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"random\"\ntrials = 3\n"
         "pruner = \"asha\"\nmin_epochs = 4\nmax_epochs = 4\n[group.grid]\nlr = [0.1]\n",
         "search.toml:14:", "must exceed min_epochs");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"random\"\ntrials = 3\n"
         "trails = 3\n",
         "search.toml:12:", "did you mean 'trials'");
  expect("[[group]]\nmodel = \"seq\"\n[group.params]\nlr = 0.1\n[group.search]\n"
         "method = \"random\"\ntrials = 3\n[group.grid]\nlr = { uniform = [0.1, 0.2] }\n",
         "search.toml:15:", "both a fixed parameter");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"tpe\"\ntrials = 3\n",
         "search.toml:10:", "nothing to search");
  expect("[[group]]\nmodel = \"seq\"\n[group.search]\nmethod = \"tpe\"\ntrials = 3\n"
         "[group.grid]\nlr = [0.1]\n[[group.sets]]\nhidden = 8\n",
         "search.toml:", "[[sets]] do not combine");
}

TEST(SearchSpace, OverridesSetSearchKeys) {
  const Experiment x =
      parse_experiment(with_header(kRandom), kFile, {"seq.search.trials=3", "seq.search.seed=9"});
  ASSERT_TRUE(x.groups[0].search);
  EXPECT_EQ(x.groups[0].search->trials, 3);
  EXPECT_EQ(x.groups[0].search->seed, 9);
  EXPECT_EQ(expand_trials(x, search_registry()).size(), 3u);
  try {
    (void)parse_experiment(with_header(kRandom), kFile, {"seq.search.method=bayes"});
    FAIL() << "bayes accepted";
  } catch (const ExperimentError& e) {
    EXPECT_NE(std::string(e.what()).find("--set seq.search.method=bayes"), std::string::npos)
        << e.what();
  }
}

// --- drawing --------------------------------------------------------------------------------

TEST(SearchSpace, DistributionsSampleWithinTheirBoundsLogUniformByItsLog) {
  Dim lin{"a", DistKind::uniform, -2.0, 3.0, false, {}, {}};
  Dim log{"b", DistKind::log_uniform, 1e-4, 1e-1, false, {}, {}};
  Dim ints{"c", DistKind::int_uniform, 3, 7, true, {}, {}};
  Dim log_int{"d", DistKind::log_uniform, 8, 512, true, {}, {}};
  const int n = 20000;
  SearchRng rng(1, 2);
  double lin_sum = 0, log_sum = 0;
  int log_below_mid = 0, log_int_below_64 = 0;
  std::map<std::int64_t, int> int_hits;
  for (int i = 0; i < n; ++i) {
    const double a = std::get<double>(draw(lin, rng));
    ASSERT_GE(a, -2.0);
    ASSERT_LE(a, 3.0);
    lin_sum += a;
    const double b = std::get<double>(draw(log, rng));
    ASSERT_GE(b, 1e-4);
    ASSERT_LE(b, 1e-1);
    log_sum += std::log10(b);
    log_below_mid += b < std::pow(10.0, -2.5);
    const auto c = std::get<std::int64_t>(draw(ints, rng));
    ASSERT_GE(c, 3);
    ASSERT_LE(c, 7);
    ++int_hits[c];
    const auto d = std::get<std::int64_t>(draw(log_int, rng));
    ASSERT_GE(d, 8);
    ASSERT_LE(d, 512);
    log_int_below_64 += d < 64;
  }
  // Uniform: mean 0.5 (standard error 5 / sqrt(12 n) ~ 0.01).
  EXPECT_NEAR(lin_sum / n, 0.5, 0.05);
  // Log-uniform is uniform in log10: mean -2.5, and half the draws below 10^-2.5 (a uniform
  // draw in [1e-4, 1e-1] would put 0.3% there).
  EXPECT_NEAR(log_sum / n, -2.5, 0.02);
  EXPECT_NEAR(static_cast<double>(log_below_mid) / n, 0.5, 0.02);
  // Integers 8..512 in log space: 64 is the geometric middle.
  EXPECT_NEAR(static_cast<double>(log_int_below_64) / n, 0.5, 0.03);
  // Every integer of [3, 7], each about a fifth of the time.
  ASSERT_EQ(int_hits.size(), 5u);
  for (const auto& [v, hits] : int_hits) EXPECT_NEAR(static_cast<double>(hits) / n, 0.2, 0.02) << v;
}

TEST(SearchSpace, TheSameSeedGivesTheSameTrialListAndAnotherSeedAnother) {
  const Registry r = search_registry();
  const auto keys = [&](std::int64_t seed) {
    Experiment x = parse_experiment(with_header(kRandom), kFile,
                                    {fmt::format("seq.search.seed={}", seed)});
    auto trials = expand_trials(x, r);
    assign_keys(trials, x, "fingerprint");
    std::vector<std::string> out;
    for (const auto& t : trials) out.push_back(t.key + " " + t.label());
    return out;
  };
  const auto a = keys(7), b = keys(7), c = keys(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), a.size());  // no repeats
  // Configuration i depends on (seed, i) alone: a longer search extends a shorter one.
  Experiment longer = parse_experiment(with_header(kRandom), kFile, {"seq.search.trials=20"});
  auto more = expand_trials(longer, r);
  assign_keys(more, longer, "fingerprint");
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], more[i].key + " " + more[i].label());
}

// --- TPE ------------------------------------------------------------------------------------

namespace {

std::vector<Dim> objective_space() {
  return {Dim{"x", DistKind::uniform, -5, 5, false, {}, {}},
          Dim{"lr", DistKind::log_uniform, 1e-5, 1e-1, false, {}, {}},
          Dim{"kind", DistKind::choice, 0, 0, false, {std::string("a"), std::string("b"),
                                                      std::string("c"), std::string("d")}, {}}};
}

// Higher is better; the optimum is x = 1.5, lr = 1e-3, kind = "b" (value 0).
double objective(const Point& p) {
  const double dx = std::get<double>(p.at("x")) - 1.5;
  const double dl = std::log10(std::get<double>(p.at("lr"))) + 3.0;
  return -(dx * dx / 4.0 + dl * dl + (std::get<std::string>(p.at("kind")) == "b" ? 0.0 : 0.5));
}

// The optimum's neighbourhood: |x - 1.5| < 0.5, |log10 lr + 3| < 0.5, kind b.
bool near_optimum(const Point& p) {
  return std::abs(std::get<double>(p.at("x")) - 1.5) < 0.5 &&
         std::abs(std::log10(std::get<double>(p.at("lr"))) + 3.0) < 0.5 &&
         std::get<std::string>(p.at("kind")) == "b";
}

// Trials until a configuration lands in the neighbourhood (budget + 1 if none does).
int trials_to_optimum(bool tpe, std::int64_t seed, int budget) {
  const auto space = objective_space();
  std::vector<Observation> seen;
  for (int i = 0; i < budget; ++i) {
    const Point p = tpe ? suggest_tpe(space, seen, seed, i, {.startup = 10})
                        : random_point(space, seed, i);
    if (near_optimum(p)) return i + 1;
    seen.push_back({p, objective(p)});
  }
  return budget + 1;
}

}  // namespace

TEST(Tpe, SameSeedAndSameObservationsGiveTheSameSuggestion) {
  const auto space = objective_space();
  std::vector<Observation> seen;
  for (int i = 0; i < 15; ++i) {
    const Point p = random_point(space, 3, i);
    seen.push_back({p, objective(p)});
  }
  const Point a = suggest_tpe(space, seen, 3, 15);
  const Point b = suggest_tpe(space, seen, 3, 15);
  EXPECT_EQ(point_json(a), point_json(b));
  // Another index (a parallel worker's next suggestion) or another seed draws other candidates.
  EXPECT_NE(point_json(a), point_json(suggest_tpe(space, seen, 3, 16)));
  EXPECT_NE(point_json(a), point_json(suggest_tpe(space, seen, 4, 15)));
  // A running configuration (the constant liar) changes what is suggested next to it.
  auto with_pending = seen;
  with_pending.push_back({a, 0, Observation::kComplete, /*pending=*/true});
  EXPECT_NE(point_json(a), point_json(suggest_tpe(space, with_pending, 3, 15)));
  // Below the start-up count it is the random search's configuration of the same index.
  std::vector<Observation> few(seen.begin(), seen.begin() + 4);
  EXPECT_EQ(point_json(suggest_tpe(space, few, 3, 4, {.startup = 10})),
            point_json(random_point(space, 3, 4)));
}

TEST(Tpe, ReachesTheOptimumsNeighbourhoodInFewerTrialsThanRandomOverManySeeds) {
  const int seeds = 40, budget = 150;
  double tpe_sum = 0, random_sum = 0;
  int tpe_wins = 0;
  for (int s = 0; s < seeds; ++s) {
    const int t = trials_to_optimum(true, s, budget);
    const int r = trials_to_optimum(false, s, budget);
    tpe_sum += t;
    random_sum += r;
    tpe_wins += t < r;
  }
  const double tpe_mean = tpe_sum / seeds, random_mean = random_sum / seeds;
  RecordProperty("tpe_mean_trials", std::to_string(tpe_mean));
  RecordProperty("random_mean_trials", std::to_string(random_mean));
  std::printf("trials to the optimum's neighbourhood over %d seeds: TPE %.1f, random %.1f "
              "(TPE first in %d)\n",
              seeds, tpe_mean, random_mean, tpe_wins);
  EXPECT_LT(tpe_mean, random_mean);
  EXPECT_GT(tpe_wins, seeds / 2);
}

// --- pruning rules --------------------------------------------------------------------------

TEST(Pruning, AshaKeepsTheTopOneOverEtaAndMedianTheUpperHalf) {
  EXPECT_TRUE(results::asha_keeps(0.1, {}, 3));           // first at its rung
  EXPECT_FALSE(results::asha_keeps(0.1, {0.2}, 3));       // n = 2: only the best goes on
  EXPECT_TRUE(results::asha_keeps(0.3, {0.2}, 3));
  EXPECT_TRUE(results::asha_keeps(0.5, {0.1, 0.2, 0.9, 0.3, 0.4}, 3));   // 2nd of 6: top 2
  EXPECT_FALSE(results::asha_keeps(0.35, {0.1, 0.2, 0.9, 0.3, 0.4}, 3));  // 3rd of 6
  EXPECT_FALSE(results::asha_keeps(std::nan(""), {0.0}, 2));  // a NaN is the worst
  EXPECT_TRUE(results::median_keeps(0.0, {0.5}));  // fewer than two others: go on
  EXPECT_FALSE(results::median_keeps(0.2, {0.1, 0.3, 0.4}));
  EXPECT_TRUE(results::median_keeps(0.3, {0.1, 0.3, 0.4}));
  results::PrunerSettings p{"asha", 1, 3, 27};
  EXPECT_EQ(p.rungs(), (std::vector<std::int64_t>{1, 3, 9}));
  p.min_epochs = 2;
  p.reduction_factor = 2;
  p.max_epochs = 17;
  EXPECT_EQ(p.rungs(), (std::vector<std::int64_t>{2, 4, 8, 16}));
}

// --- results.db -------------------------------------------------------------------------------

namespace {

results::TrialSpec spec_of(const std::string& key) {
  results::TrialSpec s;
  s.trial_key = key;
  s.group_name = "g";
  s.model = "seq";
  s.seed = 1;
  s.protocol_json = R"({"monitor":"NDCG@10"})";
  return s;
}

}  // namespace

TEST(SearchStore, TwoStoresRegisterEachConfigurationOnceAndHandOutDistinctTrials) {
  const fs::path db = test::temp_dir("search-store") / "results.db";
  results::StoreOptions other;
  other.owner = results::Owner{results::Owner::current().host,
                               static_cast<std::int64_t>(::getppid())};
  results::ResultsStore a(db), b(db, other);
  results::SearchStore sa(a), sb(b);
  sa.register_search({"S", "exp", "g", "tpe", R"({"method":"tpe"})"});
  sb.register_search({"S", "exp", "g", "tpe", R"({"method":"tpe"})"});  // the same: kept once
  int suggested = 0;
  const auto suggest = [&](const std::vector<results::SearchTrialState>& states,
                           std::int64_t index) {
    ++suggested;
    // Every earlier configuration is there, and those handed out are running.
    EXPECT_EQ(static_cast<std::int64_t>(states.size()), index);
    results::SearchProposal p;
    p.point_json = fmt::format(R"({{"i":{}}})", index);
    p.trials.push_back(spec_of(fmt::format("k{}", index)));
    return p;
  };
  std::set<std::string> handed;
  for (int round = 0; round < 3; ++round) {
    for (const auto& [store, ss] : {std::pair{&a, &sa}, std::pair{&b, &sb}}) {
      const auto keys = ss->next_trials("S", 5, suggest);
      if (keys.empty()) continue;
      ASSERT_EQ(keys.size(), 1u);
      EXPECT_TRUE(handed.insert(keys[0]).second) << keys[0] << " handed out twice";
      ASSERT_EQ(store->claim(keys[0]), results::ClaimResult::claimed);
    }
  }
  EXPECT_EQ(handed.size(), 5u);
  EXPECT_EQ(suggested, 5);
  EXPECT_TRUE(sa.next_trials("S", 5, suggest).empty());  // budget spent, nothing waits
  // A configuration whose trial was left pending (its sweep died before claiming it) is handed
  // out again instead of a new one.
  ASSERT_TRUE(b.fail("k3", "worker died", results::RunStatus::interrupted));
  EXPECT_EQ(sb.next_trials("S", 5, suggest), (std::vector<std::string>{"k3"}));
  EXPECT_EQ(suggested, 5);
  EXPECT_EQ(sa.trials("S").size(), 5u);
}

TEST(SearchStore, ARungDecisionIsTakenOnceAndReturnedAgainToAResumedTrial) {
  const fs::path db = test::temp_dir("search-rung") / "results.db";
  results::ResultsStore store(db);
  results::SearchStore ss(store);
  ss.register_search({"S", "exp", "g", "random", R"({"pruner":"asha"})"});
  const results::PrunerSettings asha{"asha", 1, 2, 8};
  EXPECT_TRUE(ss.decide_rung("S", "t1", 0, 1, 0.5, asha).keep);
  const auto second = ss.decide_rung("S", "t2", 0, 1, 0.2, asha);
  EXPECT_FALSE(second.keep);
  EXPECT_EQ(second.compared, 1);
  // Asked again with another value (a resumed attempt): the recorded decision stands.
  const auto again = ss.decide_rung("S", "t2", 0, 1, 0.9, asha);
  EXPECT_FALSE(again.keep);
  EXPECT_TRUE(again.recorded_before);
  EXPECT_TRUE(ss.decide_rung("S", "t3", 0, 1, 0.7, asha).keep);  // best of three
  const auto rows = ss.promotions("S");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].trial_key, "t2");
  EXPECT_DOUBLE_EQ(rows[1].value, 0.2);  // the value it was judged by, not the later one
}

TEST(SearchStore, AFinishedTrialCanBeRecordedPrunedAndIsNeverClaimedAgain) {
  const fs::path db = test::temp_dir("search-pruned") / "results.db";
  results::ResultsStore store(db);
  ASSERT_EQ(store.begin_trial(spec_of("p")), results::ClaimResult::claimed);
  results::FinishInfo info;
  info.pruned = true;
  info.epochs_run = 3;
  info.valid_metrics = {{"NDCG@10", 0.1}};
  store.finish("p", info);
  const auto row = store.find("p");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->status, results::RunStatus::pruned);
  EXPECT_EQ(row->epochs_run, 3);
  EXPECT_EQ(store.claim("p", /*retry_failed=*/true), results::ClaimResult::already_finished);
  EXPECT_EQ(store.status_counts().pruned, 1);
  EXPECT_FALSE(store.fail("p", "late"));
  // v_runs shows it as pruned, and v_best_per_model never picks it.
  results::Database d(db, std::chrono::milliseconds(10'000));
  auto q = d.prepare("SELECT status, monitor_value FROM v_runs WHERE trial_key = 'p'");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.text(0), "pruned");
  EXPECT_DOUBLE_EQ(q.real(1), 0.1);
  auto best = d.prepare("SELECT COUNT(*) FROM v_best_per_model");
  ASSERT_TRUE(best.step());
  EXPECT_EQ(best.int64(0), 0);
}

TEST(SearchStore, ASchemaVersion3FileIsMigratedKeepsItsRowsAndAcceptsPrunedRuns) {
  const fs::path db = test::temp_dir("search-migrate") / "results.db";
  {
    results::Database d(db, std::chrono::milliseconds(10'000));
    std::ifstream in(std::string(RECRUN_TEST_FIXTURES) + "/results_schema_v3.sql");
    std::stringstream sql;
    sql << in.rdbuf();
    ASSERT_FALSE(sql.str().empty());
    d.exec(sql.str());
    d.exec("PRAGMA user_version = 3");
    d.exec("INSERT INTO runs (trial_key, model, seed, status, attempts) VALUES "
           "('old', 'ease', 1, 'finished', 1)");
    d.exec("INSERT INTO run_metrics VALUES (1, 'valid', 'NDCG@10', 0.25)");
    EXPECT_THROW(d.exec("UPDATE runs SET status = 'pruned' WHERE trial_key = 'old'"),
                 results::StoreError);
  }
  {
    results::ResultsStore store(db);
    const auto row = store.find("old");
    ASSERT_TRUE(row);
    EXPECT_EQ(row->status, results::RunStatus::finished);
    ASSERT_EQ(store.begin_trial(spec_of("new")), results::ClaimResult::claimed);
    results::FinishInfo info;
    info.pruned = true;
    store.finish("new", info);
    EXPECT_EQ(store.find("new")->status, results::RunStatus::pruned);
  }
  results::Database d(db, std::chrono::milliseconds(10'000));
  auto v = d.prepare("PRAGMA user_version");
  ASSERT_TRUE(v.step());
  EXPECT_EQ(v.int64(0), results::kSchemaVersion);
  auto check = d.prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.step());
  EXPECT_EQ(check.text(0), "ok");
  // The constraint still refuses a status nobody knows.
  EXPECT_THROW(d.exec("UPDATE runs SET status = 'bogus' WHERE trial_key = 'old'"),
               results::StoreError);
  auto q = d.prepare("SELECT \"valid_ndcg@10\" FROM v_runs WHERE trial_key = 'old'");
  ASSERT_TRUE(q.step());
  EXPECT_DOUBLE_EQ(q.real(0), 0.25);
}
