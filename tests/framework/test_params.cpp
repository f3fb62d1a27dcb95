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

}  // namespace
}  // namespace recrun
