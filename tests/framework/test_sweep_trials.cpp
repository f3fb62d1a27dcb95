// Trial keys (stable, order-independent, sensitive to exactly what changes results), the
// store round trip of resolved parameters, --only patterns, and progress lines.
#include <gtest/gtest.h>

#include "recrun/registry.hpp"
#include "report/recorder.hpp"
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

TEST(TrialKey, IsAFixedFunctionOfItsInputs) {
  const Params p = resolved({{"lambda", 250.0}, {"features", std::vector<std::string>{"genre", "year"}}});
  const Protocol protocol;
  const std::string key = trial_key("ease", p, "fp1", protocol, 7);
  EXPECT_EQ(key.size(), 16u);
  EXPECT_EQ(key, trial_key("ease", p, "fp1", protocol, 7));
  // Pinned: a change here orphans every stored result, so it must be deliberate (bump the
  // "recrun-trial-v1" tag in canonical_trial_text when it is).
  EXPECT_EQ(canonical_trial_text("ease", p, "fp1", protocol, 7),
            "recrun-trial-v1\nmodel=ease\nparam.features=[genre,year]\nparam.float64=false\n"
            "param.fusion=none\nparam.hidden=64\nparam.lambda=250\ndata=fp1\n"
            "protocol=split=leave_one_out;min_interactions=3;metrics=Hit,NDCG,MRR,Recall;ks=10;"
            "monitor=NDCG@10\nseed=7\n");
  EXPECT_EQ(key, hash_hex(canonical_trial_text("ease", p, "fp1", protocol, 7)));
  EXPECT_EQ(hash_hex(""), "cbf29ce484222325");  // FNV-1a 64 offset basis
  EXPECT_EQ(hash_hex("a"), "af63dc4c8601ec8c");  // published FNV-1a 64 test vector
}

TEST(TrialKey, ChangesWithWhatChangesResultsOnly) {
  const Params p = resolved({{"lambda", 250.0}});
  const Protocol protocol;
  const std::string key = trial_key("ease", p, "fp", protocol, 1);
  EXPECT_NE(key, trial_key("ease2", p, "fp", protocol, 1));
  EXPECT_NE(key, trial_key("ease", resolved({{"lambda", 251.0}}), "fp", protocol, 1));
  EXPECT_NE(key, trial_key("ease", p, "fp2", protocol, 1));
  EXPECT_NE(key, trial_key("ease", p, "fp", protocol, 2));
  Protocol other = protocol;
  other.monitor = "Hit@10";
  EXPECT_NE(key, trial_key("ease", p, "fp", other, 1));
  other = protocol;
  other.min_interactions = 5;
  EXPECT_NE(key, trial_key("ease", p, "fp", other, 1));
  // Evaluation batch size does not change metrics (the evaluator guarantees it).
  other = protocol;
  other.eval_batch_size = 64;
  EXPECT_EQ(key, trial_key("ease", p, "fp", other, 1));
  // An integer written for a real resolves to the same value, hence the same key.
  EXPECT_EQ(key, trial_key("ease", resolved({{"lambda", std::int64_t{250}}}), "fp", protocol, 1));
  // A default written out explicitly is the same run as the default left out.
  EXPECT_EQ(trial_key("ease", resolved({}), "fp", protocol, 1),
            trial_key("ease", resolved({{"lambda", 500.0}, {"hidden", std::int64_t{64}}}), "fp",
                      protocol, 1));
}

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

TEST(TrialKey, StoredParamsReadBackToTheSameKey) {
  const auto s = schema();
  const Params p = resolved({{"lambda", 0.1}, {"hidden", std::int64_t{12}}, {"float64", true},
                             {"fusion", std::string("gate")},
                             {"features", std::vector<std::string>{"genre", "title"}}});
  const auto stored = store_params(p, s);
  ASSERT_EQ(stored.size(), 5u);
  for (const auto& sp : stored)
    if (sp.name == "features") EXPECT_EQ(sp.value, "[\"genre\",\"title\"]");
  const Params back = params_from_store(stored, s, "model 'm'");
  EXPECT_EQ(trial_key("m", back, "fp", {}, 3), trial_key("m", p, "fp", {}, 3));
  EXPECT_EQ(back.get_list("features"), (std::vector<std::string>{"genre", "title"}));

  const Params empty_list = resolved({{"features", std::vector<std::string>{}}});
  EXPECT_TRUE(params_from_store(store_params(empty_list, s), s, "m").get_list("features").empty());

  auto bad = stored;
  bad.push_back(results::Param::of_int("gone", 1));
  EXPECT_THROW(params_from_store(bad, s, "m"), ParamError);
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

TEST(Progress, LinesRoundTrip) {
  const report::ProgressEvent e{'E', 12, 0.125, 3.5, 1000};
  const auto back = report::parse_progress(report::format_progress(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, 'E');
  EXPECT_EQ(back->epoch, 12);
  EXPECT_DOUBLE_EQ(back->a, 0.125);
  EXPECT_DOUBLE_EQ(back->b, 3.5);
  EXPECT_DOUBLE_EQ(back->c, 1000);
  const auto nan = report::parse_progress(report::format_progress({'E', 0, std::nan(""), 1, 0}));
  ASSERT_TRUE(nan);
  EXPECT_TRUE(std::isnan(nan->a));
  EXPECT_FALSE(report::parse_progress("epoch 3 loss 1"));
  EXPECT_FALSE(report::parse_progress("@E x"));
}
