// Hostile experiment files and sweep inputs: nothing a user writes may crash, hang or exhaust
// the sweep; each is refused with a message that says what is wrong and where.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"
#include "sweep/experiment.hpp"
#include "sweep/progress.hpp"
#include "sweep/trials.hpp"
#include "trial/param_input.hpp"

namespace fs = std::filesystem;
using namespace recrun;
using namespace recrun::sweep;

namespace {

// Declarations as the SDK's feature fields and the ensemble make them: the host knows these
// parameters only through refers_to and only_when.
ParamSpec features_spec() {
  ParamSpec s = list_param("features", {}, "item features");
  s.refers_to = ParamReference{.kind = ComponentKind::feature, .member_refs = false, .reserved = {}};
  return s;
}
ParamSpec fusion_spec() {
  ParamSpec s = string_param("fusion", "none", "fusion");
  s.refers_to = ParamReference{.kind = ComponentKind::fusion, .member_refs = false,
                               .reserved = {"none", ""}};
  s.only_when = ParamRelevance{.other = "features", .why = "fusion has no effect without features"};
  return s;
}
ParamSpec members_spec() {
  ParamSpec s = list_param("members", {}, "member models");
  s.refers_to = ParamReference{.kind = ComponentKind::model, .member_refs = true, .reserved = {}};
  return s;
}

Registry hostile_registry() {
  Registry r;
  const auto no_model = [](const Params&, const ModelEnv&) -> std::unique_ptr<Model> {
    return nullptr;
  };
  r.add_model({.name = "ease",
               .summary = "closed form",
               .params = {real_param("lambda", 500, "L2").at_least(0),
                          real_param("a", 0, "a"), real_param("b", 0, "b"),
                          real_param("c", 0, "c")},
               .make = no_model});
  r.add_model({.name = "seq",
               .summary = "sequential",
               .params = {features_spec(), fusion_spec(),
                          int_param("hidden", 64, "width").range(8, 1024)},
               .make = no_model});
  r.add_model({.name = "ens",
               .summary = "ensemble",
               .params = {members_spec()},
               .make = no_model});
  const auto no_feature = [](const FeatureEnv&) -> std::shared_ptr<FeatureEncoderImpl> {
    return nullptr;
  };
  r.add_feature({.name = "genre", .summary = "", .make = no_feature});
  r.add_feature({.name = "year", .summary = "", .make = no_feature});
  const auto no_fusion = [](const FusionEnv&) -> std::shared_ptr<FusionImpl> { return nullptr; };
  r.add_fusion({.name = "gate", .summary = "", .make = no_fusion});
  r.add_fusion({.name = "concat", .summary = "", .make = no_fusion});
  return r;
}

const fs::path kFile = "/exp/hostile.toml";
const std::string kHeader = "[data]\npath = \"d\"\n";  // 2 lines

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

TEST(HostileToml, DeeplyNestedListsTablesAndDottedKeysAreRefusedBeforeParsing) {
  const int n = 40000;
  const std::vector<std::string> bodies = {
      "x = " + repeat("[", n) + repeat("]", n) + "\n",
      "[" + repeat("a.", n) + "b]\n",
      "x = " + repeat("{a=", n) + "1" + repeat("}", n) + "\n",
      repeat("a.", n) + "b = 1\n",
      // dotted keys inside inline tables add up
      "x = " + repeat("{a.a.a.a.a.a.a.a.a.a = ", 20) + "1" + repeat("}", 20) + "\n",
  };
  for (const auto& body : bodies) {
    const std::string msg = error_of([&] { parse_experiment(kHeader + body, kFile); });
    EXPECT_TRUE(has(msg, "/exp/hostile.toml:3:")) << msg.substr(0, 300);
    EXPECT_TRUE(has(msg, "more than 64 levels deep")) << msg.substr(0, 300);
  }
  // The same through --set.
  const std::string msg = error_of([&] {
    parse_experiment(kHeader + "[[group]]\nmodel = \"ease\"\n", kFile,
                     {"protocol.ks=" + repeat("[", n) + repeat("]", n)});
  });
  EXPECT_TRUE(has(msg, "--set protocol.ks=[[[")) << msg.substr(0, 300);
  EXPECT_TRUE(has(msg, "more than 64 levels deep")) << msg.substr(0, 300);
}

TEST(HostileToml, BracketsAndDotsInStringsAndCommentsDoNotCount) {
  const std::string deep = repeat("[{.", 100);
  const std::string body = "[experiment]\ndescription = \"" + deep + "\\\"" + deep +
                           "\"  # " + deep + "\n" + "# " + deep + "\n" + "[protocol]\nmonitor = '" +
                           deep + "'\n" + "[execution]\n" + "# '''\n" +
                           "[[group]]\nmodel = \"ease\"\n[group.params]\nlambda = 1.5\n";
  const std::string multi = "[experiment]\ndescription = \"\"\"\n" + deep + "\n\"\n" + deep +
                            "\"\"\"\n[[group]]\nmodel = \"ease\"\n";
  const std::string literal = "[experiment]\ndescription = '''\n" + deep + "\n'\n" + deep +
                              "'''\n[[group]]\nmodel = \"ease\"\n";
  EXPECT_EQ(error_of([&] {
              try {
                parse_experiment(kHeader + body, kFile);
              } catch (const ExperimentError& e) {
                // the monitor is not a metric: fine, the file got past the scan and the parser
                if (!has(e.what(), "protocol.monitor")) throw;
              }
            }),
            "(no error)");
  EXPECT_NO_THROW(parse_experiment(kHeader + multi, kFile));
  EXPECT_NO_THROW(parse_experiment(kHeader + literal, kFile));
  // Realistic nesting passes.
  EXPECT_NO_THROW(parse_experiment(
      kHeader + "[[group]]\nmodel = \"seq\"\n[group.grid]\nfeatures = [[], [\"genre\"]]\n"
                "[[group.sets]]\nhidden = 8\n",
      kFile));
}

TEST(HostileToml, OversizedFilesDirectoriesAndFifosAreRefusedNamingTheFile) {
  const fs::path dir = test::temp_dir("hostile_toml");
  // Over the size limit, written as a valid file.
  const fs::path big = dir / "big.toml";
  {
    std::ofstream out(big);
    out << kHeader << "[[group]]\nmodel = \"ease\"\n# " << std::string(5u << 20, 'x') << "\n";
  }
  std::string msg = error_of([&] { load_experiment(big); });
  EXPECT_TRUE(has(msg, big.string())) << msg;
  EXPECT_TRUE(has(msg, "4194304")) << msg;

  const fs::path sub = dir / "adir.toml";
  fs::create_directories(sub);
  msg = error_of([&] { load_experiment(sub); });
  EXPECT_TRUE(has(msg, sub.string())) << msg;
  EXPECT_TRUE(has(msg, "not a regular file")) << msg;
  EXPECT_FALSE(has(msg, "missing [data] path")) << msg;

  const fs::path fifo = dir / "fifo.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  msg = error_of([&] { load_experiment(fifo); });  // must not block
  EXPECT_TRUE(has(msg, fifo.string())) << msg;
  EXPECT_TRUE(has(msg, "not a regular file")) << msg;

  msg = error_of([&] { load_experiment(dir / "missing.toml"); });
  EXPECT_TRUE(has(msg, "missing.toml")) << msg;
  fs::remove_all(dir);
}

TEST(HostileGrid, AHugeGridIsCountedAndRefusedBeforeItIsExpanded) {
  std::string values;
  for (int i = 0; i < 1000; ++i) values += fmt::format("{}{}", i ? ", " : "", i);
  const std::string body = "[[group]]\nname = \"big\"\nmodel = \"ease\"\n[group.grid]\na = [" +
                           values + "]\nb = [" + values + "]\nc = [" + values + "]\n";
  static const Registry registry = hostile_registry();
  const Experiment x = parse_experiment(kHeader + body, kFile);
  EXPECT_EQ(count_trials(x.groups.at(0), x), 1000000000u);
  const std::string msg = error_of([&] { expand_trials(x, registry); });
  EXPECT_TRUE(has(msg, "/exp/hostile.toml:3:")) << msg;
  EXPECT_TRUE(has(msg, "group 'big' has 1000000000 trials")) << msg;
  EXPECT_TRUE(has(msg, "a (1000) x b (1000) x c (1000) x 1 seed")) << msg;
  EXPECT_TRUE(has(msg, "--max-trials 100000")) << msg;
  // The limit is the caller's; a small one counts across groups.
  const Experiment two = parse_experiment(
      kHeader + "[[group]]\nmodel = \"ease\"\n[group.grid]\nlambda = [1, 2, 3]\n"
                "[[group]]\nname = \"e2\"\nmodel = \"ease\"\n[group.grid]\na = [1, 2, 3]\n",
      kFile);
  EXPECT_EQ(expand_trials(two, registry, 6).size(), 6u);
  const std::string both = error_of([&] { expand_trials(two, registry, 5); });
  EXPECT_TRUE(has(both, "the experiment has 6 trials (ease: 3, e2: 3), more than --max-trials 5"))
      << both;
  // Products that overflow 64 bits saturate instead of wrapping to a small number.
  Experiment huge = x;
  for (int i = 0; i < 8; ++i) huge.groups[0].grid.push_back(huge.groups[0].grid[0]);
  EXPECT_EQ(count_trials(huge.groups[0], huge), UINT64_MAX);
  EXPECT_TRUE(has(error_of([&] { expand_trials(huge, registry); }), "more than 2^64"));
}

TEST(HostileValues, NanNegativeAndInfiniteExecutionLimitsAreRefusedAtTheirLine) {
  for (const std::string key : {"memory_limit_mb", "trial_timeout", "checkpoint_every"}) {
    for (const std::string v : {"nan", "-1", "inf", "-inf", "1e300"}) {
      const std::string msg = error_of([&] {
        parse_experiment(kHeader + "[execution]\n" + key + " = " + v +
                             "\n[[group]]\nmodel = \"ease\"\n",
                         kFile);
      });
      EXPECT_TRUE(has(msg, "/exp/hostile.toml:4:")) << key << "=" << v << ": " << msg;
      EXPECT_TRUE(has(msg, "'execution." + key + "' must be a number from 0 to 1e9")) << msg;
    }
    // and through --set
    const std::string msg = error_of([&] {
      parse_experiment(kHeader + "[[group]]\nmodel = \"ease\"\n", kFile,
                       {"execution." + key + "=nan"});
    });
    EXPECT_TRUE(has(msg, "--set execution." + key + "=nan")) << msg;
    EXPECT_TRUE(has(msg, "got nan")) << msg;
  }
  const std::string jobs = error_of([&] {
    parse_experiment(kHeader + "[execution]\njobs = -1\n[[group]]\nmodel = \"ease\"\n", kFile);
  });
  EXPECT_TRUE(has(jobs, "/exp/hostile.toml:4:")) << jobs;
  EXPECT_TRUE(has(jobs, "got -1")) << jobs;
}

TEST(HostileValues, ABrokenTomlValueInSetIsAParseErrorNotAString) {
  for (const std::string bad : {"protocol.ks=[5,", "protocol.metrics=[\"Hit\"", "data.path=\"x",
                                "protocol.ks={a=", "seq.features=[genre,"}) {
    const std::string msg = error_of([&] {
      parse_experiment(kHeader + "[[group]]\nmodel = \"seq\"\n", kFile, {bad});
    });
    if (bad.rfind("seq.", 0) == 0) continue;  // group values are parsed against the schema
    EXPECT_TRUE(has(msg, "--set " + bad)) << msg;
    EXPECT_TRUE(has(msg, "is not valid TOML")) << msg;
    EXPECT_FALSE(has(msg, "got a string")) << msg;
  }
  // Bare words are still strings.
  EXPECT_NO_THROW(parse_experiment(kHeader + "[[group]]\nmodel = \"seq\"\n", kFile,
                                   {"protocol.monitor=Hit@10"}));
}

TEST(HostileValues, PluginNamesAreCheckedForEveryComponentParameter) {
  static const Registry registry = hostile_registry();
  const auto expand = [&](const std::string& body, const std::vector<std::string>& sets = {}) {
    return expand_trials(parse_experiment(kHeader + body, kFile, sets), registry);
  };
  std::string msg = error_of([&] {
    expand("[[group]]\nmodel = \"seq\"\n[group.grid]\nfusion = [\"gat\"]\n");
  });
  EXPECT_TRUE(has(msg, "/exp/hostile.toml:6:")) << msg;
  EXPECT_TRUE(has(msg, "no fusion plugin named 'gat' (did you mean 'gate'?)")) << msg;
  msg = error_of([&] { expand("[[group]]\nmodel = \"seq\"\n", {"seq.fusion=gat"}); });
  EXPECT_TRUE(has(msg, "--set seq.fusion=gat")) << msg;
  EXPECT_TRUE(has(msg, "did you mean 'gate'")) << msg;
  msg = error_of([&] {
    expand("[[group]]\nmodel = \"seq\"\n[group.params]\nfeatures = [\"genra\"]\n");
  });
  EXPECT_TRUE(has(msg, "no feature plugin named 'genra' (did you mean 'genre'?)")) << msg;
  msg = error_of([&] {
    expand("[[group]]\nmodel = \"ens\"\n[group.params]\n"
           "members = [\"best:ease@baselines\", \"train:eas lambda=3\"]\n");
  });
  EXPECT_TRUE(has(msg, "no model plugin named 'eas' (did you mean 'ease'?)")) << msg;
  msg = error_of([&] {
    expand("[[group]]\nmodel = \"ens\"\n[group.params]\nmembers = [\"ease\"]\n");
  });
  EXPECT_TRUE(has(msg, "member 'ease' is not a trial key (32 hex digits)")) << msg;
  EXPECT_NO_THROW(trial::check_references(
      members_spec(),
      ParamValue(std::vector<std::string>{"0123456789abcdef0123456789abcdef", "best:ease",
                                          "train:ease lambda=3"}),
      registry, "m"));
  // The checker itself, as `recrun run` uses it: only declared references are looked at.
  EXPECT_NO_THROW(trial::check_references(fusion_spec(), ParamValue(std::string("none")), registry, "m"));
  EXPECT_NO_THROW(trial::check_references(real_param("lambda", 1, "l"), ParamValue(3.0), registry, "m"));
  EXPECT_THROW(trial::check_references(members_spec(), ParamValue(std::vector<std::string>{"x"}),
                                       registry, "m"),
               Error);
  // A parameter called 'fusion' that declares no reference is just a string.
  EXPECT_NO_THROW(trial::check_references(string_param("fusion", "x", "f"),
                                          ParamValue(std::string("anything")), registry, "m"));
}

TEST(Canonical, FusionWithoutFeaturesCollapsesIntoOneTrial) {
  static const Registry registry = hostile_registry();
  const Experiment x = parse_experiment(
      kHeader + "[[group]]\nmodel = \"seq\"\n[group.grid]\n"
                "fusion = [\"none\", \"gate\", \"concat\"]\nfeatures = [[], [\"genre\"]]\n",
      kFile);
  std::vector<Trial> trials = expand_trials(x, registry);
  ASSERT_EQ(trials.size(), 6u);
  const auto warnings = assign_keys(trials, x, "fingerprint");
  EXPECT_EQ(trials.size(), 4u);  // none/[] + 3 fusions with genre
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(has(warnings[0], "3 trials collapse into 1: fusion has no effect without features"))
      << warnings[0];
  for (const auto& t : trials)
    if (t.params.get_list("features").empty()) {
      EXPECT_EQ(t.params.get_string("fusion"), "none");
    }
  // Features make fusion matter: nothing is rewritten.
  const std::vector<ParamSpec> schema = {features_spec(), fusion_spec()};
  Params p;
  p.set("features", std::vector<std::string>{"genre"});
  p.set("fusion", std::string("gate"));
  EXPECT_TRUE(apply_relevance(schema, p).empty());
  EXPECT_EQ(p.get_string("fusion"), "gate");
  // Without features it collapses, from the declaration alone.
  p.set("features", std::vector<std::string>{});
  EXPECT_EQ(apply_relevance(schema, p), std::vector<std::string>{"fusion has no effect without features"});
  EXPECT_EQ(p.get_string("fusion"), "none");
}

namespace {
std::string read_all(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}
}  // namespace

// Trials that finished before the sweep (results.db) estimate a model until the sweep's own
// finish, and the header is never below a running worker's own bound (the first-hour report saw
// "ETA ?" beside four finished bert4rec trials, and "ETA 0s" beside a worker's "<=4m38s").
TEST(ProgressEta, UsesEarlierTrialsAndAgreesWithTheWorkers) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressDisplay d(f, /*live=*/false, /*slots=*/2, 2, "NDCG@10");
    d.plan({{"bert4rec", 2}});
    EXPECT_EQ(d.eta(), "? (no bert4rec trial finished yet)");
    d.history("bert4rec", {300.0, 500.0, std::nan("")});
    EXPECT_EQ(d.eta(), "6m40s");  // 2 trials x 400 s over 2 workers
    d.started(0, "k1", "bert4rec", false, "bert4rec");
    using trial::ProgressKind;
    d.event(0, {.kind = ProgressKind::start, .epoch = -1, .max_epochs = 100});
    d.event(0, {.kind = ProgressKind::epoch, .epoch = 0, .loss = 1.0, .seconds = 10.0});
    // The running trial's own bound is 99 epochs x 10 s = 990 s; with the other trial's 400 s
    // over two workers that is 695 s, below what the running one alone still needs.
    EXPECT_EQ(d.eta(), "16m30s");
    d.close();
  }
  std::fclose(f);
}

TEST(ProgressEta, EstimatedPerModelFromFinishedTrialsAndNeverEpochsOfAClosedFormFit) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressDisplay d(f, /*live=*/true, /*slots=*/1, 4, "NDCG@10");
    d.plan({{"ease", 2}, {"bert4rec", 2}});
    EXPECT_EQ(d.eta().substr(0, 1), "?");
    d.started(0, "k1", "ease lambda=1", false, "ease");
    using trial::ProgressKind;
    d.event(0, {.kind = ProgressKind::start, .epoch = -1, .max_epochs = 100});
    d.event(0, {.kind = ProgressKind::epoch, .epoch = 0, .loss = std::nan(""), .seconds = 1.0});
    d.event(0, {.kind = ProgressKind::converged, .epoch = 0});
    d.log("draw");
    const std::string drawn = read_all(f);
    EXPECT_FALSE(has(drawn, "ep 1/100")) << drawn;
    EXPECT_FALSE(has(drawn, "ETA <=")) << drawn;
    EXPECT_TRUE(has(drawn, "fitted")) << drawn;
    d.ended(0, "finished", "NDCG@10 0.1", 1.0);
    // One EASE trial says nothing about BERT4Rec's.
    EXPECT_EQ(d.eta(), "? (no bert4rec trial finished yet)");
    d.started(0, "k2", "bert4rec", false, "bert4rec");
    d.ended(0, "finished", "", 600.0);
    // 1 EASE trial x 1 s + 1 BERT4Rec trial x 600 s, one worker.
    EXPECT_EQ(d.eta(), "10m01s");
    d.close();
  }
  std::fclose(f);
}
