// One trial's identity: keys (a fixed function of exactly what changes results), the store
// round trip of resolved parameters, and the protocol's JSON form.
#include <gtest/gtest.h>

#include "core/hash.hpp"
#include "recrun/error.hpp"
#include "recrun/registry.hpp"
#include "trial/key.hpp"
#include "core/protocol.hpp"

using namespace recrun;
using namespace recrun::trial;

namespace {

std::vector<ParamSpec> schema() {
  return {real_param("lambda", 500, "").at_least(0), int_param("hidden", 64, ""),
          bool_param("float64", false, ""), string_param("fusion", "none", ""),
          list_param("features", {}, "")};
}

Params resolved(std::map<std::string, ParamValue> raw) {
  return resolve_params(schema(), raw, "model 'm'");
}

}  // namespace

TEST(TrialKey, IsAFixedFunctionOfItsInputs) {
  const Params p = resolved({{"lambda", 250.0}, {"features", std::vector<std::string>{"genre", "year"}}});
  const Protocol protocol;
  const std::string key = make_key("ease", p, "fp1", protocol, 7);
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key_version(key), 2);
  EXPECT_EQ(key, make_key("ease", p, "fp1", protocol, 7));
  // Pinned: a change here orphans every stored result, so it must be deliberate (bump
  // kKeyVersion, which tags the text, when it is; docs/results-schema.md says what old rows do).
  EXPECT_EQ(canonical_text("ease", p, "fp1", protocol, 7),
            "recrun-trial-v2\nmodel=ease\nparam.features=[genre,year]\nparam.float64=false\n"
            "param.fusion=none\nparam.hidden=64\nparam.lambda=250\ndata=fp1\n"
            "protocol=split=leave_one_out;min_interactions=3;metrics=Hit,NDCG,MRR,Recall;ks=10;"
            "monitor=NDCG@10\nseed=7\n");
  EXPECT_EQ(key, core::hash128_hex(canonical_text("ease", p, "fp1", protocol, 7)));
  EXPECT_EQ(key, "8748643ad268a677f4bf562b8a08e61c");
}

TEST(TrialKey, ChangesWithWhatChangesResultsOnly) {
  const Params p = resolved({{"lambda", 250.0}});
  const Protocol protocol;
  const std::string key = make_key("ease", p, "fp", protocol, 1);
  EXPECT_NE(key, make_key("ease2", p, "fp", protocol, 1));
  EXPECT_NE(key, make_key("ease", resolved({{"lambda", 251.0}}), "fp", protocol, 1));
  EXPECT_NE(key, make_key("ease", p, "fp2", protocol, 1));
  EXPECT_NE(key, make_key("ease", p, "fp", protocol, 2));
  Protocol other = protocol;
  other.monitor = "Hit@10";
  EXPECT_NE(key, make_key("ease", p, "fp", other, 1));
  other = protocol;
  other.min_interactions = 5;
  EXPECT_NE(key, make_key("ease", p, "fp", other, 1));
  // Evaluation batch size does not change metrics (the evaluator guarantees it).
  other = protocol;
  other.eval_batch_size = 64;
  EXPECT_EQ(key, make_key("ease", p, "fp", other, 1));
  // An integer written for a real resolves to the same value, hence the same key.
  EXPECT_EQ(key, make_key("ease", resolved({{"lambda", std::int64_t{250}}}), "fp", protocol, 1));
  // A default written out explicitly is the same run as the default left out.
  EXPECT_EQ(make_key("ease", resolved({}), "fp", protocol, 1),
            make_key("ease", resolved({{"lambda", 500.0}, {"hidden", std::int64_t{64}}}), "fp",
                      protocol, 1));
}

TEST(TrialKey, StoredParamsReadBackToTheSameKey) {
  const auto s = schema();
  const Params p = resolved({{"lambda", 0.1}, {"hidden", std::int64_t{12}}, {"float64", true},
                             {"fusion", std::string("gate")},
                             {"features", std::vector<std::string>{"genre", "title"}}});
  const auto stored = store_params(p, s);
  ASSERT_EQ(stored.size(), 5u);
  for (const auto& sp : stored)
    if (sp.name == "features") {
      EXPECT_EQ(sp.value, "[\"genre\",\"title\"]");
    }
  const Params back = params_from_store(stored, s, "model 'm'");
  EXPECT_EQ(make_key("m", back, "fp", {}, 3), make_key("m", p, "fp", {}, 3));
  EXPECT_EQ(back.get_list("features"), (std::vector<std::string>{"genre", "title"}));

  const Params empty_list = resolved({{"features", std::vector<std::string>{}}});
  EXPECT_TRUE(params_from_store(store_params(empty_list, s), s, "m").get_list("features").empty());

  auto bad = stored;
  bad.push_back(results::Param::of_int("gone", 1));
  EXPECT_THROW(params_from_store(bad, s, "m"), ParamError);
}


TEST(TrialProtocol, JsonRoundTrips) {
  Protocol p;
  p.ks = {5, 10};
  p.metrics = {"Hit", "NDCG"};
  p.monitor = "Hit@5";
  p.min_interactions = 4;
  p.eval_batch_size = 77;
  const std::string json = p.to_json("movielens");
  const Protocol q = Protocol::from_json(json);
  EXPECT_EQ(q.canonical(), p.canonical());
  EXPECT_EQ(q.eval_batch_size, 77);
  EXPECT_EQ(Protocol::data_source_from_json(json), "movielens");
  EXPECT_EQ(Protocol::data_source_from_json(Protocol{}.to_json()), "auto");
  EXPECT_THROW(Protocol::from_json("{\"ks\": 5"), Error);
}

TEST(TrialKey, OlderKeyFormatsAreRecognisedAndExplained) {
  EXPECT_EQ(key_version("0123456789abcdef0123456789abcdef"), 2);
  EXPECT_EQ(key_version("cbf29ce484222325"), 1);  // an FNV-1a key of recrun-trial-v1
  EXPECT_EQ(key_version("not-a-key"), 0);
  EXPECT_EQ(key_version("0123456789ABCDEF"), 0);
  EXPECT_EQ(legacy_key_note("0123456789abcdef0123456789abcdef"), "");
  const std::string note = legacy_key_note("cbf29ce484222325");
  EXPECT_NE(note.find("version-1 key"), std::string::npos) << note;
  EXPECT_NE(note.find("stays readable"), std::string::npos) << note;
  EXPECT_NE(note.find("run its sweep"), std::string::npos) << note;

  std::vector<results::RunRow> rows(3);
  rows[0].trial_key = "cbf29ce484222325";
  rows[1].trial_key = make_key("m", resolved({}), "fp", {}, 1);
  rows[2].trial_key = "af63dc4c8601ec8c";
  EXPECT_EQ(count_legacy_keys(rows), 2u);
}

TEST(TrialProtocol, JsonEscapesDecode) {
  // \u escapes (a BMP character and a surrogate pair), \b, \f and \/ as any JSON writer may
  // emit them; the hand-written parser recrun had before decoded these wrongly. from_json
  // validates what it reads, so the escaped names must decode to real metrics.
  const Protocol p = Protocol::from_json(
      R"({"monitor":"\u004eDCG\u004010","metrics":["H\u0069t","\u004eDCG"],)"
      R"("data_source":"caf\u00e9 \ud83d\ude00 \b\f\/"})");
  EXPECT_EQ(p.monitor, "NDCG@10");
  EXPECT_EQ(p.metrics, (std::vector<std::string>{"Hit", "NDCG"}));
  EXPECT_EQ(Protocol::data_source_from_json(R"({"data_source":"caf\u00e9 \ud83d\ude00 \b\f\/"})"),
            "caf\xC3\xA9 \xF0\x9F\x98\x80 \b\f/");

  // What to_json writes reads back byte for byte, control characters included.
  Protocol q;
  q.metrics = {"Recall", "MRR"};
  q.monitor = "MRR@10";
  const std::string source("a\b\f\x01\"\\z\xC3\xA9\t\n", 11);
  const Protocol r = Protocol::from_json(q.to_json(source));
  EXPECT_EQ(r.monitor, q.monitor);
  EXPECT_EQ(r.metrics, q.metrics);
  EXPECT_EQ(Protocol::data_source_from_json(q.to_json(source)), source);
  EXPECT_THROW(Protocol::from_json(R"({"monitor": 5})"), Error);
  EXPECT_THROW(Protocol::from_json("[1]"), Error);
  // A stored protocol that decodes to an unknown metric is refused, naming the field.
  try {
    (void)Protocol::from_json(R"({"metrics":["A\u0042"]})");
    ADD_FAILURE() << "an unknown metric was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("protocol.metrics: unknown metric 'AB'"), std::string::npos)
        << e.what();
  }
}
