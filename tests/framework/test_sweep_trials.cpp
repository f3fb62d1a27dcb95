// A sweep's trial keys (independent of file order and group names, duplicates run once),
// --only patterns, and progress lines. Keys themselves are tested in test_trial.cpp.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <tuple>

#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "trial/recorder.hpp"
#include "sweep/experiment.hpp"
#include "sweep/trials.hpp"

using namespace recrun;
using namespace recrun::sweep;

namespace {

std::vector<ParamSpec> schema() {
  return {real_param("lambda", 500, "l2").at_least(0), int_param("hidden", 64, "width"),
          bool_param("float64", false, "fp64"), string_param("fusion", "none", "fusion"),
          list_param("features", {}, "features")};
}

Params resolved(std::map<std::string, ParamValue> raw) {
  return resolve_params(schema(), raw, "model 'm'");
}

}  // namespace

TEST(TrialKey, DoesNotDependOnFileOrderOrGroupName) {
  const Registry registry = [] {
    Registry r;
    r.add_model({.name = "m", .summary = "", .params = schema(),
                 .make = [](const Params&, const ModelEnv&) -> std::unique_ptr<Model> { return nullptr; }});
    return r;
  }();
  const auto keys = [&](const std::string& groups) {
    auto x = parse_experiment("[data]\npath = \"d\"\n" + groups, "/x/e.toml");
    auto trials = expand_trials(x, registry);
    assign_keys(trials, x, "fp");
    std::vector<std::string> out;
    for (const auto& t : trials) out.push_back(t.key);
    return out;
  };
  const auto a = keys("[[group]]\nname = \"a\"\nmodel = \"m\"\n[group.params]\nlambda = 3\nhidden = 8\n");
  const auto b = keys("[[group]]\nname = \"b\"\nmodel = \"m\"\n[group.params]\nhidden = 8\nlambda = 3.0\n");
  EXPECT_EQ(a, b);
}

TEST(TrialKey, DuplicateTrialsRunOnce) {
  const Registry registry = [] {
    Registry r;
    r.add_model({.name = "m", .summary = "", .params = schema(),
                 .make = [](const Params&, const ModelEnv&) -> std::unique_ptr<Model> { return nullptr; }});
    return r;
  }();
  auto x = parse_experiment(
      "[data]\npath = \"d\"\n[[group]]\nname = \"a\"\nmodel = \"m\"\n[group.grid]\nlambda = [1, 2]\n"
      "[[group]]\nname = \"b\"\nmodel = \"m\"\n[group.params]\nlambda = 2\n",
      "/x/e.toml");
  auto trials = expand_trials(x, registry);
  ASSERT_EQ(trials.size(), 3u);
  const auto warnings = assign_keys(trials, x, "fp");
  EXPECT_EQ(trials.size(), 2u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("same run"), std::string::npos);
}

TEST(TrialKey, OnlyPatternsMatchGroupModelKeyAndParams) {
  Trial t;
  t.group = "bert_gate";
  t.model = "bert4rec";
  t.key = "0123456789abcdef";
  t.params = resolved({{"fusion", std::string("gate")}});
  t.varying = {"fusion"};
  t.seed = 3;
  EXPECT_TRUE(matches(t, "bert_gate"));
  EXPECT_TRUE(matches(t, "bert*"));
  EXPECT_TRUE(matches(t, "01234"));
  EXPECT_TRUE(matches(t, "fusion=gate"));
  EXPECT_TRUE(matches(t, "*fusion=gate*"));
  EXPECT_TRUE(matches(t, "nope,seed=3"));
  EXPECT_FALSE(matches(t, "ease"));
  EXPECT_FALSE(matches(t, "bert"  "_concat*"));
}

// --only reads KEY=VALUE terms with the --set value grammar: commas inside a list belong to the
// value, the printed and the quoted forms agree, and each alternative's count is kept.
TEST(TrialKey, OnlyTermsAreValuesNotSubstrings) {
  std::vector<Trial> trials;
  const std::vector<std::vector<std::string>> feature_sets = {
      {}, {"genre"}, {"genre", "year"}, {"genre", "year", "title"}};
  for (const auto& fs : feature_sets)
    for (const std::string fusion : {"gate", "concat"}) {
      Trial t;
      t.group = "seq";
      t.model = "m";
      t.params = resolved({{"features", fs}, {"fusion", fusion}, {"lambda", 500}});
      t.varying = {"features", "fusion"};
      t.seed = 1;
      t.key = fmt::format("k{}", trials.size());
      trials.push_back(std::move(t));
    }
  const auto select = [&](const std::string& pattern) {
    OnlyFilter f(pattern);
    std::vector<std::string> keys;
    for (const auto& t : trials)
      if (f.matches(t)) keys.push_back(t.key);
    f.check(trials);
    return std::pair{keys, f.counts()};
  };
  // The case: the old comma split selected 7 of these 8.
  auto [keys, counts] = select("features=[genre,year,title] fusion=gate");
  EXPECT_EQ(keys, (std::vector<std::string>{"k6"}));
  EXPECT_EQ(select("features=[\"genre\", \"year\", \"title\"] fusion=gate").first, keys);
  EXPECT_EQ(select("features=[genre, year, title] fusion=gate").first, keys);
  // A list value matches the whole list, not a prefix of it.
  EXPECT_EQ(select("features=[genre]").first, (std::vector<std::string>{"k2", "k3"}));
  // Alternatives are still joined by top-level commas, and each one is counted.
  std::tie(keys, counts) = select("features=[genre] fusion=gate, features=[] ,seed=1 fusion=concat");
  EXPECT_EQ(keys, (std::vector<std::string>{"k0", "k1", "k2", "k3", "k5", "k7"}));
  EXPECT_EQ(counts, (std::vector<std::size_t>{1, 2, 3}));
  // Numbers compare as values of the parameter's type.
  EXPECT_EQ(select("lambda=500.0 fusion=gate").first.size(), 4u);
  EXPECT_EQ(select("lambda=5e2 model=m group=seq fusion=gate").first.size(), 4u);
  EXPECT_TRUE(select("lambda=50").first.empty());
  // Mistakes are refused, naming --only and what is wrong.
  try {
    select("fusoin=gate");
    ADD_FAILURE() << "an unknown key was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no trial has a parameter 'fusoin' (did you mean 'fusion'?)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(OnlyFilter("features=[genre"), Error);
  EXPECT_THROW(OnlyFilter("features=genre]"), Error);
  EXPECT_THROW(select("lambda=abc"), Error);
}

TEST(Progress, LinesRoundTrip) {
  using trial::ProgressKind;
  const trial::ProgressEvent e{
      .kind = ProgressKind::epoch, .epoch = 12, .loss = 0.125, .seconds = 3.5, .examples = 1000};
  const auto back = trial::parse_progress(trial::format_progress(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, ProgressKind::epoch);
  EXPECT_EQ(back->epoch, 12);
  EXPECT_DOUBLE_EQ(back->loss, 0.125);
  EXPECT_DOUBLE_EQ(back->seconds, 3.5);
  EXPECT_EQ(back->examples, 1000);
  const auto v = trial::parse_progress(trial::format_progress(
      {.kind = ProgressKind::validation, .epoch = 3, .value = 0.25, .improved = true}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kind, ProgressKind::validation);
  EXPECT_DOUBLE_EQ(v->value, 0.25);
  EXPECT_TRUE(v->improved);
  const auto start = trial::parse_progress(
      trial::format_progress({.kind = ProgressKind::start, .max_epochs = 40}));
  ASSERT_TRUE(start);
  EXPECT_EQ(start->max_epochs, 40);
  const auto nan = trial::parse_progress(
      trial::format_progress({.kind = ProgressKind::epoch, .epoch = 0, .loss = std::nan("")}));
  ASSERT_TRUE(nan);
  EXPECT_TRUE(std::isnan(nan->loss));
  EXPECT_FALSE(trial::parse_progress("@Z 1 0 0 0"));
  EXPECT_FALSE(trial::parse_progress("epoch 3 loss 1"));
  EXPECT_FALSE(trial::parse_progress("@E x"));
}
