// The SDK's model conformance check (recrun/conformance.hpp): a correct model passes every
// check, and each deliberately broken model fails the check that is about its defect.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <cmath>
#include <numeric>
#include <set>

#include "recrun/conformance.hpp"
#include "recrun/error.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace cf = recrun::conformance;

// A correct closed-form model: item-item co-occurrence weights plus an item bias. Built with
// random weights, so a fresh model that did not load a tensor scores differently.
class Cooc : public Model {
 public:
  explicit Cooc(std::int64_t items) : w_(torch::randn({items, items})), bias_(torch::randn({items})) {}
  EpochResult fit_epoch(TrainContext& ctx) override {
    std::vector<std::int64_t> all(ctx.train().num_users());
    std::iota(all.begin(), all.end(), 0);
    const torch::Tensor x = ctx.train().dense_rows(all);
    w_ = x.t().mm(x) / static_cast<double>(all.size());
    w_.diagonal().zero_();
    bias_ = ctx.train().item_counts().to(torch::kFloat) / 100.0;
    return EpochResult::done();
  }
  torch::Tensor score(const UserBatch& users) override { return users.bag().mm(w_) + bias_; }
  void save(Archive& out) const override {
    out.write("w", w_);
    out.write("bias", bias_);
  }
  void load(const Archive& in) override {
    w_ = in.read("w");
    bias_ = in.read("bias");
  }

 protected:
  torch::Tensor w_, bias_;
};

// Centres scores over the batch: a user's scores depend on who else is in it.
class BatchCentred final : public Cooc {
 public:
  using Cooc::Cooc;
  torch::Tensor score(const UserBatch& users) override {
    const torch::Tensor s = Cooc::score(users);
    return s - s.mean(0, /*keepdim=*/true);
  }
};

// load() forgets the bias.
class ForgetsBias final : public Cooc {
 public:
  using Cooc::Cooc;
  void load(const Archive& in) override { w_ = in.read("w"); }
};

// Drops the last item's column.
class WrongShape final : public Cooc {
 public:
  using Cooc::Cooc;
  torch::Tensor score(const UserBatch& users) override {
    return Cooc::score(users).narrow(1, 0, users.num_items() - 1);
  }
};

// Returns float64 scores.
class WrongDtype final : public Cooc {
 public:
  using Cooc::Cooc;
  torch::Tensor score(const UserBatch& users) override {
    return Cooc::score(users).to(torch::kFloat64);
  }
};

// log of scores that can be zero (-inf) or negative (NaN).
class NanScores final : public Cooc {
 public:
  using Cooc::Cooc;
  torch::Tensor score(const UserBatch& users) override {
    return torch::log(Cooc::score(users) - 0.05);
  }
};

// Noise while scoring, like dropout left on.
class Noisy final : public Cooc {
 public:
  using Cooc::Cooc;
  torch::Tensor score(const UserBatch& users) override {
    const torch::Tensor s = Cooc::score(users);
    return s + 0.01 * torch::rand_like(s);
  }
};

// Saves an optimizer-like moment that load() ignores: scores survive, resuming would not.
class ForgetsMoment final : public Cooc {
 public:
  using Cooc::Cooc;
  EpochResult fit_epoch(TrainContext& ctx) override {
    moment_ = torch::full({3}, 0.5);
    return Cooc::fit_epoch(ctx);
  }
  void save(Archive& out) const override {
    Cooc::save(out);
    out.write("moment", moment_);
  }

 private:
  torch::Tensor moment_ = torch::zeros({3});
};

// load() throws, as Archive::read does for a key save() never wrote.
class LoadsMissingKey final : public Cooc {
 public:
  using Cooc::Cooc;
  void load(const Archive& in) override {
    Cooc::load(in);
    in.read("never_saved");
  }
};

// Scores drift with the batch size by `relative` (float rounding is ~1e-7).
class Drifts final : public Cooc {
 public:
  Drifts(std::int64_t items, double relative) : Cooc(items), relative_(relative) {}
  torch::Tensor score(const UserBatch& users) override {
    return Cooc::score(users) * (1.0 + relative_ * static_cast<double>(users.size() - 1));
  }

 private:
  double relative_;
};

template <class M, class... Args>
cf::Report check_model(const Dataset& data, const cf::Options& options, Args... args) {
  return cf::check([&] { return std::make_unique<M>(data.num_items(), args...); }, data, options);
}

cf::Options in_temp_dir() {
  cf::Options o;
  o.temp_dir = test::temp_dir("conformance");
  return o;
}

const std::vector<std::string> kAll = {"shape",      "finite",     "repeatable",
                                       "batch_independence", "round_trip", "resave"};

std::set<std::string> failed_checks(const cf::Report& r) {
  std::set<std::string> out;
  for (const auto& f : r.failures) out.insert(f.check);
  return out;
}

std::string message_of(const cf::Report& r, const std::string& check) {
  for (const auto& f : r.failures)
    if (f.check == check) return f.message;
  return "";
}

TEST(Conformance, TinyDatasetIsSmallCompleteAndReproducible) {
  const Dataset d = cf::tiny_dataset();
  EXPECT_EQ(d.num_users(), 48);
  EXPECT_EQ(d.num_items(), 30);
  std::vector<int> seen(d.num_items(), 0);
  for (std::int64_t u = 0; u < d.num_users(); ++u) {
    const auto items = d.user_items(u);
    EXPECT_GE(items.size(), 3u);
    EXPECT_LE(items.size(), 13u);  // max_len, plus at most one item nobody else drew
    EXPECT_EQ(std::set<std::int32_t>(items.begin(), items.end()).size(), items.size())
        << "user " << u << " has a repeated item";
    for (const auto i : items) ++seen[i];
  }
  for (std::int64_t i = 0; i < d.num_items(); ++i) EXPECT_GT(seen[i], 0) << "item " << i;
  ASSERT_TRUE(d.categorical.count("genre"));
  EXPECT_EQ(d.categorical.at("genre").vocab_size(), 3);
  ASSERT_TRUE(d.numeric.count("year"));

  const Dataset again = cf::tiny_dataset();
  EXPECT_EQ(again.items, d.items);
  EXPECT_EQ(again.fingerprint, d.fingerprint);
  const Dataset other = cf::tiny_dataset({.seed = 8});
  EXPECT_NE(other.items, d.items);
  EXPECT_NE(other.fingerprint, d.fingerprint);
  EXPECT_THROW(cf::tiny_dataset({.items = 5, .max_len = 6}), Error);

  const Interactions all = cf::all_interactions(d);
  EXPECT_EQ(all.num_users(), d.num_users());
  EXPECT_EQ(all.size(), d.num_interactions());
  EXPECT_EQ(all.num_items(), d.num_items());
}

TEST(Conformance, ACorrectModelPassesEveryCheck) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<Cooc>(d, in_temp_dir());
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.passed, kAll);
  EXPECT_NO_THROW(r.require());
  EXPECT_NE(r.summary().find("PASS round_trip"), std::string::npos) << r.summary();
}

TEST(Conformance, TheRoundTripFileIsRemoved) {
  const Dataset d = cf::tiny_dataset();
  const cf::Options o = in_temp_dir();
  ASSERT_TRUE(check_model<Cooc>(d, o).ok());
  EXPECT_TRUE(std::filesystem::is_empty(o.temp_dir));
}

TEST(Conformance, BatchDependentScoresFailBatchIndependence) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<BatchCentred>(d, in_temp_dir());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(failed_checks(r), std::set<std::string>{"batch_independence"}) << r.summary();
  EXPECT_NE(message_of(r, "batch_independence").find("alone"), std::string::npos) << r.summary();
  try {
    r.require();
    ADD_FAILURE() << "require() did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("FAIL batch_independence"), std::string::npos) << e.what();
  }
}

TEST(Conformance, ALoadThatForgetsATensorFailsTheRoundTrip) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<ForgetsBias>(d, in_temp_dir());
  EXPECT_TRUE(r.failed("round_trip")) << r.summary();
  EXPECT_NE(message_of(r, "round_trip").find("scores differently"), std::string::npos)
      << r.summary();
  // Its resave writes the fresh model's random bias, not the loaded one.
  EXPECT_TRUE(r.failed("resave")) << r.summary();
  EXPECT_NE(message_of(r, "resave").find("'bias'"), std::string::npos) << r.summary();
  for (const auto* ok : {"shape", "finite", "repeatable", "batch_independence"})
    EXPECT_FALSE(r.failed(ok)) << ok << "\n" << r.summary();
}

TEST(Conformance, ALoadThatIgnoresSavedStateFailsResaveEvenWhenScoresSurvive) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<ForgetsMoment>(d, in_temp_dir());
  EXPECT_EQ(failed_checks(r), std::set<std::string>{"resave"}) << r.summary();
  EXPECT_NE(message_of(r, "resave").find("'moment' has other values"), std::string::npos)
      << r.summary();
}

TEST(Conformance, ALoadThatThrowsFailsTheRoundTripWithItsMessage) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<LoadsMissingKey>(d, in_temp_dir());
  EXPECT_TRUE(r.failed("round_trip")) << r.summary();
  EXPECT_NE(message_of(r, "round_trip").find("never_saved"), std::string::npos) << r.summary();
  EXPECT_FALSE(r.skipped.empty());
}

TEST(Conformance, TheWrongShapeOrDtypeFailsShapeAndSkipsTheRest) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report shape = check_model<WrongShape>(d, in_temp_dir());
  EXPECT_EQ(failed_checks(shape), std::set<std::string>{"shape"}) << shape.summary();
  EXPECT_NE(message_of(shape, "shape").find("expected [32, 30]"), std::string::npos)
      << shape.summary();
  EXPECT_EQ(shape.skipped.size(), kAll.size() - 1) << shape.summary();
  EXPECT_TRUE(shape.passed.empty());

  const cf::Report dtype = check_model<WrongDtype>(d, in_temp_dir());
  EXPECT_EQ(failed_checks(dtype), std::set<std::string>{"shape"}) << dtype.summary();
  EXPECT_NE(message_of(dtype, "shape").find("expected float32"), std::string::npos)
      << dtype.summary();
}

TEST(Conformance, NanOrInfScoresFailFinite) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<NanScores>(d, in_temp_dir());
  // Only "finite": NaNs at the same places compare equal in the other checks.
  EXPECT_EQ(failed_checks(r), std::set<std::string>{"finite"}) << r.summary();
  EXPECT_NE(message_of(r, "finite").find("NaN or Inf"), std::string::npos) << r.summary();
}

TEST(Conformance, NoiseWhileScoringFailsRepeatable) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report r = check_model<Noisy>(d, in_temp_dir());
  EXPECT_TRUE(r.failed("repeatable")) << r.summary();
  EXPECT_NE(message_of(r, "repeatable").find("eval mode"), std::string::npos) << r.summary();
}

TEST(Conformance, TheToleranceAbsorbsRoundingButNotRealDrift) {
  const Dataset d = cf::tiny_dataset();
  // 32 users: 31 * 1e-8 ~ 3e-7 relative, rounding-sized; passes by default, not bitwise.
  EXPECT_TRUE(check_model<Drifts>(d, in_temp_dir(), 1e-8).ok());
  cf::Options exact = in_temp_dir();
  exact.bitwise = true;
  const cf::Report bitwise = check_model<Drifts>(d, exact, 1e-8);
  EXPECT_EQ(failed_checks(bitwise), std::set<std::string>{"batch_independence"})
      << bitwise.summary();
  EXPECT_NE(message_of(bitwise, "batch_independence").find("bitwise"), std::string::npos);
  // 1e-4 per extra user is a real dependency.
  EXPECT_TRUE(check_model<Drifts>(d, in_temp_dir(), 1e-4).failed("batch_independence"));
}

TEST(Conformance, FactoryAndTrainingErrorsAreReportedNotThrown) {
  const Dataset d = cf::tiny_dataset();
  const cf::Report no_model = cf::check([]() -> std::unique_ptr<Model> { return nullptr; }, d);
  EXPECT_TRUE(no_model.failed("build")) << no_model.summary();
  EXPECT_EQ(no_model.skipped.size(), kAll.size());

  class Throws final : public Cooc {
   public:
    using Cooc::Cooc;
    EpochResult fit_epoch(TrainContext&) override { throw Error("diverged"); }
  };
  const cf::Report r = cf::check([&] { return std::make_unique<Throws>(d.num_items()); }, d);
  EXPECT_TRUE(r.failed("fit")) << r.summary();
  EXPECT_NE(message_of(r, "fit").find("diverged"), std::string::npos);
}

TEST(Conformance, CheckTrainedUsesTheCallersModelAndRefusesTooFewUsers) {
  const Dataset d = cf::tiny_dataset();
  const Interactions train = cf::all_interactions(d);
  Cooc model(d.num_items());
  cf::fit(model, d, train, 1);
  auto make = [&] { return std::make_unique<Cooc>(d.num_items()); };
  EXPECT_TRUE(cf::check_trained(model, make, train, in_temp_dir()).ok());

  const Interactions one_user({0, 2}, {0, 1}, 4);
  EXPECT_THROW(cf::check_trained(model, make, one_user), Error);
}

// check_plugin loads a built library as the host would: the built-in plugins pass, and every
// library the host refuses fails "registration" with the host's reason.
TEST(Conformance, CheckPluginPassesEveryBuiltInAndFailsWhatTheHostRefuses) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::plugin_dir())) {
    if (entry.path().extension() != ".so") continue;
    const cf::Report r = cf::check_plugin(entry.path());
    EXPECT_TRUE(r.ok()) << entry.path() << "\n" << r.summary();
    EXPECT_GE(r.passed.size(), 2u) << r.summary();  // registration + at least one component
    ++checked;
  }
  EXPECT_GE(checked, 10);
  const auto fixtures = test::fixture_plugin_dir();
  const auto failure = [&](const char* file) {
    const cf::Report r = cf::check_plugin(fixtures / file);
    EXPECT_FALSE(r.ok()) << file;
    return r.failures.empty() ? std::string() : r.failures.front().check + ": " + r.failures.front().message;
  };
  const std::string bad = failure("librecrun_bad_declaration.so");
  EXPECT_NE(bad.find("registration: "), std::string::npos) << bad;
  EXPECT_NE(bad.find("parameter 'rate' has a default (2) outside its own declaration"),
            std::string::npos)
      << bad;
  EXPECT_NE(failure("librecrun_throws_on_register.so").find("fixture refuses"), std::string::npos);
  EXPECT_NE(failure("librecrun_bad_abi.so").find("sdk=999"), std::string::npos);
  EXPECT_NE(failure("librecrun_not_a_plugin.so").find("not a recrun plugin"), std::string::npos);
}

}  // namespace
}  // namespace recrun
