// The ensemble plugin against a fake host whose members score with fixed tables: normalisation
// and fusion against hand-computed values, a single member keeps its ranking exactly, refused
// members name themselves, parameters are checked, and inline members survive save/load.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/evaluator.hpp"
#include "predict/topk.hpp"
#include "recrun/registry.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

// A member whose score for (user, item) is table[user][item]; "fit" adds `bias` to every score
// (so that training and save/load of an inline member are observable).
class TableModel final : public Model {
 public:
  explicit TableModel(torch::Tensor table) : table_(std::move(table)) {}
  EpochResult fit_epoch(TrainContext&) override { return EpochResult::done(); }
  torch::Tensor score(const UserBatch& users) override {
    auto idx = torch::tensor(users.users(), torch::kLong);
    return table_.index_select(0, idx) + bias_;
  }
  void save(Archive& out) const override {
    out.write("bias", torch::tensor({bias_}));
    out.write_text("note", "table");
  }
  void load(const Archive& in) override {
    bias_ = in.read("bias").item<float>();
    EXPECT_EQ(in.read_text("note"), "table");
  }
  float bias_ = 0;

 private:
  torch::Tensor table_;
};

class FakeHost final : public HostServices {
 public:
  std::map<std::string, torch::Tensor> runs;      // ref -> score table
  std::map<std::string, std::string> refusals;    // ref -> reason
  mutable std::vector<std::string> loaded;
  mutable int trained = 0;

  MemberModel load_run(const std::string& ref) const override {
    if (refusals.count(ref)) throw Error(refusals.at(ref));
    if (!runs.count(ref)) throw Error("no such run");
    loaded.push_back(ref);
    return {ref == "best:b" ? "key-b" : ref, "table", "fake", std::make_shared<TableModel>(runs.at(ref))};
  }
  MemberModel make_inline(const std::string& spec, std::uint64_t) const override {
    if (!runs.count(spec)) throw Error("unknown inline model");
    return {"", "table", "inline", std::make_shared<TableModel>(runs.at(spec))};
  }
  double train_inline(const std::string&, Model& model, std::uint64_t) const override {
    ++trained;
    dynamic_cast<TableModel&>(model).bias_ = 5;
    return 0.5;
  }
};

const Dataset& empty_dataset() {
  static const Dataset d;
  return d;
}

std::unique_ptr<Model> make(const std::map<std::string, ParamValue>& raw, const HostServices* host) {
  const auto& info = test::test_registry().model("ensemble");
  const Params p = resolve_params(info.params, raw, "model 'ensemble'");
  return info.make(p, ModelEnv{empty_dataset(), test::test_registry(), 7, host});
}

// One user (id 0) with history {0}, four items.
torch::Tensor score_one(Model& m, std::vector<std::int32_t> history = {0}) {
  static std::vector<std::int32_t> h;
  h = std::move(history);
  const UserBatch batch({0}, {std::span<const std::int32_t>(h)}, 4);
  torch::NoGradGuard ng;
  return m.score(batch).to(torch::kFloat64)[0];
}

TEST(Ensemble, ZScoreUsesUnseenItemsStatistics) {
  FakeHost host;
  host.runs["best:a"] = torch::tensor({{100.f, 2.f, 3.f, 4.f}});
  auto m = make({{"members", std::vector<std::string>{"best:a"}}}, &host);
  const auto z = score_one(*m);
  // Unseen items 1..3 score 2, 3, 4: mean 3, population std sqrt(2/3) = 0.816497.
  const double sd = std::sqrt(2.0 / 3.0);
  EXPECT_NEAR(z[1].item<double>(), -1 / sd, 1e-5);
  EXPECT_NEAR(z[2].item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(z[3].item<double>(), 1 / sd, 1e-5);
  // The seen item is transformed the same way (a re-consumed target stays rankable).
  EXPECT_NEAR(z[0].item<double>(), 97 / sd, 1e-3);
}

TEST(Ensemble, MinMaxAndWeightedSum) {
  FakeHost host;
  host.runs["best:a"] = torch::tensor({{0.f, 2.f, 3.f, 4.f}});
  host.runs["best:b"] = torch::tensor({{0.f, 10.f, 30.f, 20.f}});
  auto m = make({{"members", std::vector<std::string>{"best:a", "best:b"}},
                 {"combine", std::string("minmax")},
                 {"weights", std::vector<double>{1.0, 3.0}}},
                &host);
  const auto s = score_one(*m);
  // a over unseen {2,3,4}: 0, 0.5, 1. b over {10,30,20}: 0, 1, 0.5. Sum 1*a + 3*b.
  EXPECT_NEAR(s[1].item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(s[2].item<double>(), 0.5 + 3.0, 1e-6);
  EXPECT_NEAR(s[3].item<double>(), 1.0 + 1.5, 1e-6);
  // Item 0 (seen) is mapped by the same transforms: a (0-2)/2 = -1, b (0-10)/20 = -0.5.
  EXPECT_NEAR(s[0].item<double>(), -1.0 - 1.5, 1e-6);
}

// The deprecated w1..w4 still weigh the members (old experiment files).
TEST(Ensemble, ReciprocalRankFusion) {
  FakeHost host;
  host.runs["best:a"] = torch::tensor({{9.f, 3.f, 2.f, 1.f}});
  host.runs["best:b"] = torch::tensor({{9.f, 1.f, 3.f, 3.f}});
  auto m = make({{"members", std::vector<std::string>{"best:a", "best:b"}},
                 {"combine", std::string("rrf")},
                 {"rrf_k", 10.0},
                 {"w2", 2.0}},
                &host);
  const auto s = score_one(*m);
  // Ranks among unseen items 1..3: a: 1, 2, 3. b: 3, 1, 1 (items 2 and 3 tie).
  EXPECT_NEAR(s[1].item<double>(), 1.0 / 11 + 2.0 / 13, 1e-6);
  EXPECT_NEAR(s[2].item<double>(), 1.0 / 12 + 2.0 / 11, 1e-6);
  EXPECT_NEAR(s[3].item<double>(), 1.0 / 13 + 2.0 / 11, 1e-6);
  // The seen item ranks above every unseen one in both: rank 1.
  EXPECT_NEAR(s[0].item<double>(), 1.0 / 11 + 2.0 / 11, 1e-6);
}

TEST(Ensemble, NonFiniteScoresSinkAndConstantRowsAreZero) {
  FakeHost host;
  const float inf = std::numeric_limits<float>::infinity();
  host.runs["best:a"] = torch::tensor({{1.f, -inf, 5.f, 5.f}});
  auto m = make({{"members", std::vector<std::string>{"best:a"}}}, &host);
  const auto s = score_one(*m);
  // Unseen finite scores are constant (5, 5): std 0, so they normalise to 0; -inf sinks to the
  // row's lowest normalised value, which is item 0's (1 - 5) / 1 = -4 (std guarded to 1).
  EXPECT_EQ(s[2].item<double>(), 0.0);
  EXPECT_EQ(s[3].item<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(s[1].item<double>()));
  EXPECT_LE(s[1].item<double>(), s[0].item<double>());
}

TEST(Ensemble, SingleMemberKeepsItsRankingExactly) {
  // 300 users x 500 items of random scores: the target ranks and top-20 lists of the ensemble
  // equal the member's own, for every normalisation.
  const std::int64_t users = 300, items = 500;
  torch::manual_seed(3);
  const auto table = torch::randn({users, items}) * 3 + 1;
  std::mt19937 rng(5);
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> flat;
  std::vector<std::int64_t> ids;
  std::vector<std::int32_t> targets;
  for (std::int64_t u = 0; u < users; ++u) {
    for (int j = 0; j < 6; ++j) flat.push_back(static_cast<std::int32_t>(rng() % items));
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
    ids.push_back(u);
    targets.push_back(static_cast<std::int32_t>(rng() % items));
  }
  const Interactions history(offsets, flat, items);
  FakeHost host;
  host.runs["best:a"] = table;
  TableModel member(table);
  core::EvalOptions eval;
  eval.keep_ranks = true;
  eval.batch_size = 64;
  const auto want = core::evaluate(member, history, ids, targets, eval);
  for (const std::string how : {"zscore", "minmax", "rrf"}) {
    auto m = make({{"members", std::vector<std::string>{"best:a"}}, {"combine", how}}, &host);
    const auto got = core::evaluate(*m, history, ids, targets, eval);
    if (how == "rrf") {
      // A re-consumed target (in its own history) shares its fused rank with the unseen item
      // just below it, so the evaluator's id tie-break may put it one place lower; every other
      // target keeps its rank exactly.
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto h = history.items(ids[i]);
        const bool seen = std::find(h.begin(), h.end(), targets[i]) != h.end();
        if (seen) EXPECT_LE(std::abs(got.ranks[i] - want.ranks[i]), 1) << how << " user " << i;
        else EXPECT_EQ(got.ranks[i], want.ranks[i]) << how << " user " << i;
      }
      continue;
    }
    EXPECT_EQ(got.ranks, want.ranks) << how;
  }
}

TEST(Ensemble, RefusedMemberNamesItselfBeforeTraining) {
  FakeHost host;
  host.runs["best:a"] = torch::zeros({1, 4});
  host.refusals["best:sasrec@baselines"] =
      "run 0123 was trained on other data (data fingerprint x, this run's y)";
  try {
    make({{"members", std::vector<std::string>{"best:a", "best:sasrec@baselines"}}}, &host);
    FAIL() << "a refused member must fail the ensemble";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("ensemble member 2 'best:sasrec@baselines'"), std::string::npos) << what;
    EXPECT_NE(what.find("trained on other data"), std::string::npos) << what;
  }
  EXPECT_THROW(make({{"members", std::vector<std::string>{"best:missing"}}}, &host), Error);
}

TEST(Ensemble, ParametersAreChecked) {
  FakeHost host;
  host.runs["best:a"] = torch::zeros({1, 4});
  host.runs["best:b"] = torch::zeros({1, 4});
  const auto message = [&](const std::map<std::string, ParamValue>& raw,
                           const HostServices* h) -> std::string {
    try {
      make(raw, h);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({}, &host).find("'members' is empty"), std::string::npos);
  EXPECT_NE(message({{"members", std::vector<std::string>{"best:a", "best:b"}}, {"w3", 2.0}}, &host)
                .find("w3 = 2 is set, but there are only 2 members"),
            std::string::npos);
  EXPECT_NE(message({{"members", std::vector<std::string>{"best:a", "best:b"}}, {"w1", 0.0}, {"w2", 0.0}},
                    &host)
                .find("every member's weight is 0"),
            std::string::npos);
  EXPECT_NE(message({{"members", std::vector<std::string>{"best:a"}}}, nullptr).find("ModelEnv::host"),
            std::string::npos);
  EXPECT_NE(message({{"members", std::vector<std::string>{"best:a", "best:b"}},
                     {"weights", std::vector<double>{1.0, 2.0}},
                     {"w2", 3.0}},
                    &host)
                .find("both weights and the deprecated w2 are set"),
            std::string::npos);
  // The list's own rules are the SDK's: one weight per member, each >= 0, at most 8 members.
  const auto& info = test::test_registry().model("ensemble");
  const auto resolve_error = [&](const std::map<std::string, ParamValue>& raw) -> std::string {
    try {
      resolve_params(info.params, raw, "model 'ensemble'");
    } catch (const ParamError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(resolve_error({{"members", std::vector<std::string>{"best:a", "best:b"}},
                           {"weights", std::vector<double>{1.0}}})
                .find("parameter 'weights' has 1 element but 'members' has 2"),
            std::string::npos);
  EXPECT_NE(resolve_error({{"members", std::vector<std::string>{"best:a"}},
                           {"weights", std::vector<double>{-1.0}}})
                .find("element 1 must be >= 0"),
            std::string::npos);
  EXPECT_NE(resolve_error({{"members", std::vector<std::string>(9, "best:a")}})
                .find("must have at most 8 elements, got 9"),
            std::string::npos);
}

TEST(Ensemble, CheckpointRecordsMembersAndInlineWeights) {
  FakeHost host;
  host.runs["best:b"] = torch::tensor({{0.f, 1.f, 2.f, 3.f}});
  host.runs["pop"] = torch::tensor({{0.f, 3.f, 2.f, 1.f}});
  const std::map<std::string, ParamValue> raw{
      {"members", std::vector<std::string>{"best:b", "train:pop"}}};
  auto m = make(raw, &host);
  const Dataset& d = empty_dataset();
  const Interactions train({0, 0}, {}, 4);
  TrainContext ctx(d, train, 1, 1);
  m->fit_epoch(ctx);
  EXPECT_EQ(host.trained, 1);
  const auto before = score_one(*m);
  Archive saved;
  m->save(saved);
  EXPECT_EQ(saved.read_text("members"), "best:b\tkey-b\ntrain:pop\t\n");
  EXPECT_EQ(saved.read("member2/bias").item<float>(), 5.0f);
  // A fresh ensemble (inline member untrained, bias 0) restored from it scores the same.
  auto again = make(raw, &host);
  again->load(saved);
  EXPECT_TRUE(torch::allclose(score_one(*again), before));
  // A checkpoint whose query member was another run reloads that run by its key.
  Archive other = saved;
  other.write_text("members", "best:b\tkey-old\ntrain:pop\t\n");
  host.runs["key-old"] = torch::tensor({{0.f, 3.f, 2.f, 1.f}});
  auto third = make(raw, &host);
  third->load(other);
  EXPECT_EQ(host.loaded.back(), "key-old");
}

}  // namespace
}  // namespace recrun

// The real host service and real members: an ensemble of inline EASE and popularity passes the
// SDK's conformance check (shapes, finiteness, repeatability, batch independence, save/load).
#include "core/split.hpp"
#include "recrun/conformance.hpp"
#include "trial/members.hpp"

namespace recrun {
namespace {

TEST(Ensemble, InlineMembersPassTheConformanceCheck) {
  namespace cf = recrun::conformance;
  const Dataset data = cf::tiny_dataset();
  const core::Split split = core::make_split(data, {});
  const trial::RunHost host(test::test_registry(), data, &split, trial::Protocol{}, nullptr, 1);
  const auto& info = test::test_registry().model("ensemble");
  const Params p = resolve_params(
      info.params,
      {{"members", std::vector<std::string>{"train:ease lambda=20", "train:popularity"}},
       {"w2", 0.5}},
      "model 'ensemble'");
  auto seed = std::make_shared<std::uint64_t>(1);
  const cf::ModelFactory factory = [&, seed] {
    return info.make(p, ModelEnv{data, test::test_registry(), (*seed)++, &host});
  };
  cf::Options o;
  o.epochs = 1;
  o.temp_dir = test::temp_dir("ensemble-conformance");
  const cf::Report r = cf::check(factory, data, o);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed.size(), 6u) << r.summary();
  // Without a results.db a run reference is refused, naming the member.
  const Params q = resolve_params(
      info.params, {{"members", std::vector<std::string>{"best:ease"}}}, "model 'ensemble'");
  try {
    info.make(q, ModelEnv{data, test::test_registry(), 1, &host});
    FAIL() << "a run reference without a store must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ensemble member 1 'best:ease'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace recrun
