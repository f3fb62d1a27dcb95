// Experiment files: parsing, validation against schemas (every mistake named with its file,
// line and key), overrides and grid expansion. The registry is built in the test, so these
// tests need no plugin libraries.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "sweep/experiment.hpp"
#include "sweep/trials.hpp"

namespace fs = std::filesystem;
using namespace recrun;
using namespace recrun::sweep;

namespace {

// As the SDK's feature fields declare them: the host knows them only by these declarations.
ParamSpec features_param() {
  ParamSpec s = list_param("features", {}, "item features");
  s.refers_to = ParamReference{.kind = ComponentKind::feature, .member_refs = false, .reserved = {}};
  return s;
}
ParamSpec fusion_param() {
  ParamSpec s = string_param("fusion", "none", "fusion");
  s.refers_to = ParamReference{.kind = ComponentKind::fusion, .member_refs = false,
                               .reserved = {"none", ""}};
  s.only_when = ParamRelevance{.other = "features", .why = "fusion has no effect without features"};
  return s;
}

Registry fake_registry() {
  Registry r;
  const auto no_model = [](const Params&, const ModelEnv&) -> std::unique_ptr<Model> {
    return nullptr;
  };
  r.add_model({.name = "ease",
               .summary = "closed form",
               .params = {real_param("lambda", 500, "L2").at_least(0),
                          bool_param("float64", false, "double precision")},
               .make = no_model});
  r.add_model({.name = "popularity", .summary = "floor", .params = {}, .make = no_model});
  r.add_model({.name = "seq",
               .summary = "sequential",
               .params = {features_param(), fusion_param(),
                          int_param("hidden", 64, "width").range(8, 1024),
                          real_param("lr", 1e-3, "learning rate").at_least(0),
                          string_param("optimizer", "adam", "opt").one_of({"adam", "sgd"})},
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

const fs::path kFile = "/exp/dir/test.toml";

const char* kHeader = R"(
[experiment]
name = "t"

[data]
path = "data/small"

)";

Experiment parse(const std::string& body, const std::vector<std::string>& sets = {}) {
  return parse_experiment(std::string(kHeader) + body, kFile, sets);
}

std::vector<Trial> expand(const std::string& body, const std::vector<std::string>& sets = {}) {
  static const Registry registry = fake_registry();
  return expand_trials(parse(body, sets), registry);
}

// Line numbers in messages count the header's lines.
int header_lines() {
  int n = 0;
  for (const char* p = kHeader; *p; ++p) n += *p == '\n';
  return n;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Experiment, ParsesSectionsDefaultsAndRelativeDataPath) {
  const Experiment x = parse_experiment(R"(
seeds = [1, 2]

[experiment]
name = "t"

[data]
path = "data/small"

[protocol]
ks = [10, 20]
monitor = "Hit@20"

[execution]
jobs = 3
trial_timeout = 60

[[group]]
model = "ease"
)", kFile);
  EXPECT_EQ(x.name, "t");
  EXPECT_EQ(x.data_path, fs::path("/exp/dir/data/small"));
  EXPECT_EQ(x.data_source, "auto");
  EXPECT_EQ(x.protocol.ks, (std::vector<std::int64_t>{10, 20}));
  EXPECT_EQ(x.protocol.monitor, "Hit@20");
  EXPECT_EQ(x.protocol.split, core::SplitMode::leave_one_out);
  EXPECT_EQ(x.seeds, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(x.execution.jobs, 3);
  EXPECT_EQ(x.execution.trial_timeout_s, 60);
  ASSERT_EQ(x.groups.size(), 1u);
  EXPECT_EQ(x.groups[0].name, "ease");  // defaults to the model name
  EXPECT_EQ(x.hash.size(), 16u);
}

TEST(Experiment, ExpandsGridTimesSetsTimesSeeds) {
  const auto trials = expand(R"(
[[group]]
name = "seq"
model = "seq"
seeds = [1, 2]
[group.params]
hidden = 32
[group.grid]
fusion = ["gate", "concat"]
lr = [0.001, 0.01, 0.1]
[[group.sets]]
features = ["genre"]
[[group.sets]]
features = ["genre", "year"]

[groups.baseline]
model = "ease"
[groups.baseline.grid]
lambda = [100, 200]
)");
  // 2 sets x 2 fusions x 3 lrs x 2 seeds + 2 lambdas x 1 seed (the default, 42).
  ASSERT_EQ(trials.size(), 2u * 2 * 3 * 2 + 2);
  EXPECT_EQ(trials[0].params.get_int("hidden"), 32);
  EXPECT_EQ(trials[0].params.get_list("features"), std::vector<std::string>{"genre"});
  EXPECT_EQ(trials[0].params.get_string("fusion"), "gate");
  EXPECT_DOUBLE_EQ(trials[0].params.get_real("lr"), 0.001);
  EXPECT_EQ(trials[0].seed, 1);
  EXPECT_EQ(trials[1].seed, 2);
  EXPECT_DOUBLE_EQ(trials[2].params.get_real("lr"), 0.01);  // the last axis runs fastest
  EXPECT_EQ(trials[0].label(), "features=[genre] fusion=gate lr=0.001 seed=1");
  // Defaults are filled in, trainer parameters included.
  EXPECT_EQ(trials[0].params.get_string("optimizer"), "adam");
  EXPECT_EQ(trials[0].params.get_int("epochs"), 100);
  EXPECT_EQ(trials.back().group, "baseline");
  EXPECT_DOUBLE_EQ(trials.back().params.get_real("lambda"), 200);
  EXPECT_EQ(trials.back().seed, 42);
}

TEST(Experiment, UnknownParameterNamesKeyLineAndSuggestion) {
  const std::string msg = error_of([] {
    expand(R"([[group]]
model = "ease"
[group.params]
lamda = 5
)");
  });
  EXPECT_NE(msg.find(fmt::format("test.toml:{}:", header_lines() + 4)), std::string::npos) << msg;
  EXPECT_NE(msg.find("'lamda'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'lambda'"), std::string::npos) << msg;
}

TEST(Experiment, WrongTypeAndOutOfRangeAreReportedAtTheValue) {
  std::string msg = error_of([] {
    expand(R"([[group]]
model = "ease"
[group.grid]
lambda = [100,
          "big"]
)");
  });
  EXPECT_NE(msg.find(fmt::format("test.toml:{}:", header_lines() + 5)), std::string::npos) << msg;
  EXPECT_NE(msg.find("'lambda'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("must be float"), std::string::npos) << msg;

  msg = error_of([] {
    expand(R"([[group]]
model = "seq"
[group.params]
hidden = 4
)");
  });
  EXPECT_NE(msg.find(fmt::format(":{}:", header_lines() + 4)), std::string::npos) << msg;
  EXPECT_NE(msg.find("'hidden' must be >= 8"), std::string::npos) << msg;

  msg = error_of([] {
    expand(R"([[group]]
model = "seq"
[group.params]
optimizer = "adma"
)");
  });
  EXPECT_NE(msg.find("did you mean 'adam'"), std::string::npos) << msg;
}

TEST(Experiment, TrainerParametersValidateLikeModelParameters) {
  const std::string msg = error_of([] {
    expand(R"([[group]]
model = "ease"
[group.params]
epochs = 0
)");
  });
  EXPECT_NE(msg.find(fmt::format(":{}:", header_lines() + 4)), std::string::npos) << msg;
  EXPECT_NE(msg.find("'epochs' must be >= 1"), std::string::npos) << msg;
  EXPECT_NO_THROW(expand("[[group]]\nmodel = \"ease\"\n[group.params]\npatience = 3\n"
                         "time_budget = 60\neval_every = 2\n"));
}

TEST(Experiment, UnknownModelFeatureAndFusionAreNamed) {
  std::string msg = error_of([] { expand("[[group]]\nmodel = \"eas\"\n"); });
  EXPECT_NE(msg.find(fmt::format(":{}:", header_lines() + 2)), std::string::npos) << msg;
  EXPECT_NE(msg.find("'eas'"), std::string::npos) << msg;

  msg = error_of([] {
    expand(R"([[group]]
model = "seq"
[group.grid]
features = [["genre"], ["genre", "yaer"]]
)");
  });
  EXPECT_NE(msg.find(fmt::format(":{}:", header_lines() + 4)), std::string::npos) << msg;
  EXPECT_NE(msg.find("no feature plugin named 'yaer'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'year'"), std::string::npos) << msg;

  msg = error_of([] {
    expand("[[group]]\nmodel = \"seq\"\n[group.params]\nfusion = \"gated\"\n");
  });
  EXPECT_NE(msg.find("no fusion plugin named 'gated'"), std::string::npos) << msg;
  // "none" means no fusion, whatever plugins are loaded.
  EXPECT_NO_THROW(expand("[[group]]\nmodel = \"seq\"\n[group.params]\nfusion = \"none\"\n"));
}

TEST(Experiment, StructuralMistakesNameTheKey) {
  std::string msg = error_of([] { parse("[protcol]\nks = [10]\n[[group]]\nmodel = \"ease\"\n"); });
  EXPECT_NE(msg.find(fmt::format(":{}:", header_lines() + 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'protocol'"), std::string::npos) << msg;

  msg = error_of([] { parse("[protocol]\nmonitor = \"NDCG@20\"\n[[group]]\nmodel = \"ease\"\n"); });
  EXPECT_NE(msg.find(fmt::format(":{}:", header_lines() + 2)), std::string::npos) << msg;
  EXPECT_NE(msg.find("monitor 'NDCG@20'"), std::string::npos) << msg;

  msg = error_of([] { parse("[protocol]\nmetrics = [\"Hit\", \"nDCG\"]\n[[group]]\nmodel = \"ease\"\n"); });
  EXPECT_NE(msg.find("nDCG"), std::string::npos) << msg;

  msg = error_of([] { parse("[[group]]\nmodel = \"ease\"\nlambda = 5\n"); });
  EXPECT_NE(msg.find("unknown key 'lambda' in [[group]]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[params]"), std::string::npos) << msg;

  msg = error_of([] {
    parse("[[group]]\nmodel = \"ease\"\n[group.params]\nlambda = 1\n[group.grid]\nlambda = [1, 2]\n");
  });
  EXPECT_NE(msg.find("both a fixed parameter"), std::string::npos) << msg;

  msg = error_of([] { parse("[[group]]\nmodel = \"ease\"\n[[group]]\nmodel = \"ease\"\n"); });
  EXPECT_NE(msg.find("used twice"), std::string::npos) << msg;

  msg = error_of([] { parse("[[group]]\nmodel = \"ease\"\n[group.grid]\nlambda = 5\n"); });
  EXPECT_NE(msg.find("grid 'lambda' must be a non-empty list"), std::string::npos) << msg;

  msg = error_of([] { parse("[[group]]\nmodel = \"ease\"\nseeds = [1, 1]\n"); });
  EXPECT_NE(msg.find("seed 1 twice"), std::string::npos) << msg;

  msg = error_of([] { parse_experiment("[[group]]\nmodel = \"ease\"\n", kFile); });
  EXPECT_NE(msg.find("missing [data] path"), std::string::npos) << msg;

  msg = error_of([] { parse("[[group]\nmodel = 1\n"); });
  EXPECT_NE(msg.find("test.toml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid TOML"), std::string::npos) << msg;
}

TEST(Experiment, OverridesReplaceGridAxesAndSections) {
  const std::string body = R"([[group]]
name = "e"
model = "ease"
[group.grid]
lambda = [1, 2, 3]

[[group]]
name = "p"
model = "popularity"
)";
  EXPECT_EQ(expand(body).size(), 4u);
  auto trials = expand(body, {"e.lambda=7"});
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_DOUBLE_EQ(trials[0].params.get_real("lambda"), 7);
  trials = expand(body, {"*.epochs=3", "experiment.seeds=[5, 6]", "protocol.ks=[5]",
                         "protocol.monitor=Hit@5"});
  ASSERT_EQ(trials.size(), 8u);
  for (const auto& t : trials) EXPECT_EQ(t.params.get_int("epochs"), 3);
  EXPECT_EQ(trials[1].seed, 6);
  EXPECT_EQ(parse(body, {"protocol.ks=[5]", "protocol.monitor=Hit@5"}).protocol.monitor, "Hit@5");
  // The overrides are part of what is stored, so an overridden sweep is its own experiment.
  EXPECT_NE(parse(body).hash, parse(body, {"e.lambda=7"}).hash);

  std::string msg = error_of([&] { expand(body, {"e.lamda=7"}); });
  EXPECT_NE(msg.find("--set e.lamda=7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'lambda'"), std::string::npos) << msg;
  msg = error_of([&] { expand(body, {"ee.lambda=7"}); });
  EXPECT_NE(msg.find("no group or section named 'ee'"), std::string::npos) << msg;
  msg = error_of([&] { expand(body, {"e.lambda=abc"}); });
  EXPECT_NE(msg.find("must be a number"), std::string::npos) << msg;
  msg = error_of([&] { expand(body, {"*.lamdba=1"}); });
  EXPECT_NE(msg.find("no group's model has a parameter 'lamdba' (did you mean 'lambda'?)"),
            std::string::npos)
      << msg;
  msg = error_of([&] { expand(body, {"*.epoch=5"}); });  // the first-hour report's case
  EXPECT_NE(msg.find("no group's model has a parameter 'epoch' (did you mean 'epochs'?)"),
            std::string::npos)
      << msg;
  msg = error_of([&] { expand(body, {"lambda=1"}); });
  EXPECT_NE(msg.find("GROUP.KEY=VALUE"), std::string::npos) << msg;
  msg = error_of([&] { expand(body, {"protocol.monitor=Hit@50"}); });
  EXPECT_NE(msg.find("--set protocol.monitor=Hit@50"), std::string::npos) << msg;
}

