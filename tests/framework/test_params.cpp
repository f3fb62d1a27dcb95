#include <gtest/gtest.h>

#include "recrun/error.hpp"
#include "recrun/params.hpp"

namespace recrun {
namespace {

std::vector<ParamSpec> schema() {
  return {int_param("hidden_units", 64, "width").range(1, 4096),
          real_param("lr", 1e-3, "learning rate").at_least(0),
          bool_param("share_embeddings", true, "tie output to input"),
          string_param("fusion", "none", "fusion").one_of({"none", "concat", "add", "gate"}),
          list_param("features", {}, "features").one_of({"genre", "year", "title"})};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ParamError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Params, DefaultsFillMissingKeys) {
  const Params p = resolve_params(schema(), {{"lr", 0.01}}, "model 'x'");
  EXPECT_EQ(p.get_int("hidden_units"), 64);
  EXPECT_DOUBLE_EQ(p.get_real("lr"), 0.01);
  EXPECT_TRUE(p.get_bool("share_embeddings"));
  EXPECT_EQ(p.get_string("fusion"), "none");
  EXPECT_TRUE(p.get_list("features").empty());
}

TEST(Params, IntegerAcceptedWhereRealExpected) {
  const Params p = resolve_params(schema(), {{"lr", std::int64_t{1}}}, "m");
  EXPECT_DOUBLE_EQ(p.get_real("lr"), 1.0);
  EXPECT_EQ(type_of(p.at("lr")), ParamType::real);
}

TEST(Params, UnknownKeyGetsDidYouMean) {
  const auto msg = error_of([] { resolve_params(schema(), {{"hiden_units", std::int64_t{3}}}, "model 'bert4rec'"); });
  EXPECT_NE(msg.find("model 'bert4rec'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown parameter 'hiden_units'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'hidden_units'"), std::string::npos) << msg;
}

TEST(Params, DidYouMeanSuggestsOnlyNearNames) {
  const std::vector<std::string> names = {"k", "lambda", "hidden_units", "lr", "adam", "gate"};
  EXPECT_EQ(did_you_mean("hidden", names), "hidden_units");  // a prefix
  EXPECT_EQ(did_you_mean("lamda", names), "lambda");
  EXPECT_EQ(did_you_mean("adma", names), "adam");  // a swap is one edit
  EXPECT_EQ(did_you_mean("lrr", names), "lr");
  EXPECT_EQ(did_you_mean("lr", {"k", "lambda"}), std::nullopt);  // was 'k'
  EXPECT_EQ(did_you_mean("zzzzzz", names), std::nullopt);
  EXPECT_EQ(did_you_mean("", names), std::nullopt);
}

TEST(Params, WrongTypeOutOfRangeAndBadChoiceAreNamed) {
  auto msg = error_of([] { resolve_params(schema(), {{"hidden_units", std::string("big")}}, "m"); });
  EXPECT_NE(msg.find("'hidden_units' must be int, got string"), std::string::npos) << msg;
  msg = error_of([] { resolve_params(schema(), {{"hidden_units", std::int64_t{0}}}, "m"); });
  EXPECT_NE(msg.find("must be >= 1"), std::string::npos) << msg;
  msg = error_of([] { resolve_params(schema(), {{"fusion", std::string("gaet")}}, "m"); });
  EXPECT_NE(msg.find("did you mean 'gate'"), std::string::npos) << msg;
  msg = error_of([] {
    resolve_params(schema(), {{"features", std::vector<std::string>{"genre", "genre"}}}, "m");
  });
  EXPECT_NE(msg.find("twice"), std::string::npos) << msg;
  msg = error_of([] { resolve_params(schema(), {{"hidden_units", 2.5}}, "m"); });
  EXPECT_NE(msg.find("must be an integer"), std::string::npos) << msg;
}

TEST(Params, ParsesCommandLineText) {
  const auto s = schema();
  EXPECT_EQ(std::get<std::int64_t>(parse_param_text(s[0], " 128 ", "m")), 128);
  EXPECT_DOUBLE_EQ(std::get<double>(parse_param_text(s[1], "5e-4", "m")), 5e-4);
  EXPECT_FALSE(std::get<bool>(parse_param_text(s[2], "false", "m")));
  EXPECT_EQ(std::get<std::string>(parse_param_text(s[3], "\"gate\"", "m")), "gate");
  EXPECT_EQ(std::get<std::vector<std::string>>(parse_param_text(s[4], "[genre, year]", "m")),
            (std::vector<std::string>{"genre", "year"}));
  EXPECT_TRUE(std::get<std::vector<std::string>>(parse_param_text(s[4], "[]", "m")).empty());
  EXPECT_THROW(parse_param_text(s[0], "12x", "m"), ParamError);
  EXPECT_THROW(parse_param_text(s[2], "maybe", "m"), ParamError);
}

TEST(Params, CanonicalTextIsStable) {
  EXPECT_EQ(to_string(ParamValue{0.001}), "0.001");
  EXPECT_EQ(to_string(ParamValue{std::int64_t{500}}), "500");
  EXPECT_EQ(to_string(ParamValue{true}), "true");
  EXPECT_EQ(to_string(ParamValue{std::vector<std::string>{"genre", "year"}}), "[genre,year]");
}

// The float-list type: element bounds, length rules, the same-length rule between two lists,
// integers accepted as elements, command-line text, canonical text and the one-number shorthand.
TEST(Params, FloatListsHaveElementBoundsAndLengthRules) {
  ParamSpec members = list_param("members", {}, "members");
  ParamSpec weights = real_list_param("weights", {}, "weights").at_least(0);
  weights.same_length_as = "members";
  weights.max_length = 3;
  const std::vector<ParamSpec> sc = {members, weights};
  const auto ok = resolve_params(
      sc, {{"members", std::vector<std::string>{"a", "b"}}, {"weights", std::vector<double>{1, 2.5}}},
      "model 'e'");
  EXPECT_EQ(ok.get_real_list("weights"), (std::vector<double>{1, 2.5}));
  // Empty is allowed whatever the other list holds.
  EXPECT_TRUE(resolve_params(sc, {{"members", std::vector<std::string>{"a"}}}, "m")
                  .get_real_list("weights")
                  .empty());
  std::string e = error_of([&] {
    resolve_params(sc, {{"members", std::vector<std::string>{"a", "b"}},
                        {"weights", std::vector<double>{1}}},
                   "model 'e'");
  });
  EXPECT_NE(e.find("model 'e': parameter 'weights' has 1 element but 'members' has 2"),
            std::string::npos)
      << e;
  e = error_of([&] { check_param(weights, std::vector<double>{1, -0.5}, "m"); });
  EXPECT_NE(e.find("parameter 'weights' element 2 must be >= 0, got -0.5"), std::string::npos) << e;
  e = error_of([&] { check_param(weights, std::vector<double>{1, 1, 1, 1}, "m"); });
  EXPECT_NE(e.find("must have at most 3 elements, got 4"), std::string::npos) << e;
  // [] from TOML arrives as an empty string list; a single number is a one-element list.
  EXPECT_TRUE(std::get<std::vector<double>>(check_param(weights, std::vector<std::string>{}, "m")).empty());
  EXPECT_EQ(std::get<std::vector<double>>(check_param(weights, std::int64_t{2}, "m")),
            (std::vector<double>{2.0}));
  EXPECT_EQ(std::get<std::vector<double>>(parse_param_text(weights, "[1, 0.25]", "m")),
            (std::vector<double>{1.0, 0.25}));
  EXPECT_EQ(std::get<std::vector<double>>(parse_param_text(weights, "1,2", "m")),
            (std::vector<double>{1.0, 2.0}));
  EXPECT_THROW(parse_param_text(weights, "[1, x]", "m"), ParamError);
  EXPECT_EQ(to_string(ParamValue{std::vector<double>{1.0, 0.5}}), "[1,0.5]");
  EXPECT_EQ(type_name(ParamType::real_list), "float list");
}

// only_when: a parameter that cannot matter takes its default, from the declaration alone.
TEST(Params, RelevanceResetsAParameterWithoutEffect) {
  ParamSpec features = list_param("features", {}, "features");
  ParamSpec fusion = string_param("fusion", "none", "fusion");
  fusion.only_when = ParamRelevance{.other = "features", .why = "no effect without features"};
  const std::vector<ParamSpec> sc = {features, fusion};
  Params p = resolve_params(sc, {{"fusion", std::string("gate")}}, "m");
  EXPECT_EQ(apply_relevance(sc, p), std::vector<std::string>{"no effect without features"});
  EXPECT_EQ(p.get_string("fusion"), "none");
  p = resolve_params(sc, {{"fusion", std::string("gate")},
                          {"features", std::vector<std::string>{"genre"}}}, "m");
  EXPECT_TRUE(apply_relevance(sc, p).empty());
  EXPECT_EQ(p.get_string("fusion"), "gate");
}

// The declarations themselves: what registration refuses.
TEST(Params, SchemaProblemsNameTheParameter) {
  EXPECT_FALSE(schema_problem(schema()));
  ParamSpec len = int_param("n", 1, "n");
  len.max_length = 2;
  EXPECT_EQ(schema_problem({len}), "parameter 'n' has a length rule but is not a list parameter");
  ParamSpec rel = string_param("fusion", "none", "fusion");
  rel.only_when = ParamRelevance{.other = "featurez", .why = "w"};
  EXPECT_NE(schema_problem({rel})->find("only matters when 'featurez' is set, which is not another "
                                        "parameter"),
            std::string::npos);
  ParamSpec same = real_list_param("w", {}, "w");
  same.same_length_as = "members";
  EXPECT_NE(schema_problem({same})->find("'members', which is not another list parameter"),
            std::string::npos);
  ParamSpec ref = real_param("r", 0, "r");
  ref.refers_to = ParamReference{.kind = ComponentKind::feature, .member_refs = false, .reserved = {}};
  EXPECT_NE(schema_problem({ref})->find("refers to plugins but is not a string"), std::string::npos);
  ParamSpec short_list = real_list_param("w", {}, "w");
  short_list.min_length = 1;
  EXPECT_NE(schema_problem({short_list})->find("has a default ([]) outside its own declaration"),
            std::string::npos);
}

}  // namespace
}  // namespace recrun
