// The Recorder: what one run writes to TensorBoard and to results.db, including diagnostics,
// the HParams session, and the curve truncation that keeps a resumed run's epochs unique.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "trial/recorder.hpp"
#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "tensorboard/event_reader.hpp"
#include "tensorboard/hparams.hpp"

namespace fs = std::filesystem;
using namespace recrun;

namespace {

std::vector<tensorboard::Event> events_in(const fs::path& dir) {
  std::vector<tensorboard::Event> out;
  for (const auto& f : fs::directory_iterator(dir)) {
    if (!f.is_regular_file()) continue;
    auto part = tensorboard::read_event_file(f.path());
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::set<std::string> tags_of(const std::vector<tensorboard::Event>& events) {
  std::set<std::string> tags;
  for (const auto& e : events)
    for (const auto& v : e.values) tags.insert(v.tag);
  return tags;
}

core::EvalResult eval_of(double ndcg) {
  core::EvalResult r;
  r.metrics = {{"NDCG@10", ndcg}, {"Hit@10", 2 * ndcg}};
  r.users = 10;
  return r;
}

results::TrialSpec spec(const std::string& key) {
  results::TrialSpec s;
  s.trial_key = key;
  s.model = "m";
  s.seed = 1;
  return s;
}

}  // namespace

TEST(Recorder, WritesCurvesDiagnosticsAndHParamsToBothSinks) {
  const fs::path dir = test::temp_dir("recorder");
  results::ResultsStore store(dir / "results.db");
  ASSERT_EQ(store.begin_trial(spec("k1")), results::ClaimResult::claimed);

  std::vector<std::string> progress;
  trial::RecorderOptions o;
  o.trial_key = "k1";
  o.store = &store;
  o.tensorboard_dir = dir / "tb" / "k1";
  o.hparams = {{"lr", 0.01}, {"fusion", std::string("gate")}, {"share", true}};
  o.hparams_group = "g";
  o.max_epochs = 3;
  o.progress = [&](const std::string& line) { progress.push_back(line); };
  trial::Recorder rec(o);
  rec.begin();
  rec.on_epoch(0, EpochResult::of(0.9, 1000), {{"lr", 0.01}}, 2.0);
  rec.on_validation(0, eval_of(0.1), {{"gate/genre", 0.3}}, true);
  rec.on_epoch(1, EpochResult::of(0.7, 1000), {{"lr", 0.005}}, 2.0);
  rec.on_validation(1, eval_of(0.2), {{"gate/genre", 0.4}}, true);
  rec.on_test(eval_of(0.15));
  core::RunOutcome out;
  rec.end(&out);

  const auto events = events_in(o.tensorboard_dir);
  const auto tags = tags_of(events);
  for (const char* tag : {"train/loss", "train/lr", "train/throughput", "valid/NDCG@10",
                          "valid/Hit@10", "val_gate/genre", "test/NDCG@10", "test/Hit@10"})
    EXPECT_TRUE(tags.count(tag)) << tag;
  EXPECT_TRUE(tags.count(std::string(tensorboard::hparams_session_start_tag)));
  EXPECT_TRUE(tags.count(std::string(tensorboard::hparams_session_end_tag)));
  for (const auto& e : events)
    for (const auto& v : e.values) {
      if (v.tag == "test/NDCG@10") EXPECT_EQ(e.step, 1);  // the best epoch
      if (v.tag == "train/throughput") EXPECT_NEAR(*v.scalar(), 500.0, 1e-3);
      if (v.tag == std::string(tensorboard::hparams_session_start_tag)) {
        const auto data = tensorboard::decode_hparams_plugin_data(v.plugin_content);
        const auto& start = std::get<tensorboard::SessionStartInfo>(data.data);
        EXPECT_EQ(start.group_name, "g");
        EXPECT_EQ(std::get<std::string>(start.hparams.at("fusion")), "gate");
      }
    }

  std::set<std::string> stored;
  for (const auto& m : store.epoch_metrics("k1"))
    stored.insert(fmt::format("{}:{}:{}", m.epoch, results::to_string(m.split), m.name));
  for (const char* name : {"0:train:loss", "0:train:lr", "0:train:throughput", "1:valid:NDCG@10",
                           "1:valid:val_gate/genre"})
    EXPECT_TRUE(stored.count(name)) << name;
  ASSERT_GE(progress.size(), 6u);
  EXPECT_EQ(progress.front().substr(0, 2), "@S");
  EXPECT_EQ(progress.back().substr(0, 2), "@T");
}

TEST(Recorder, AResumedRunDropsTheCurvePastItsCheckpointAndAFreshOneAllOfIt) {
  const fs::path dir = test::temp_dir("recorder-resume");
  results::ResultsStore store(dir / "results.db");
  ASSERT_EQ(store.begin_trial(spec("k2")), results::ClaimResult::claimed);
  for (std::int64_t e = 0; e < 4; ++e)
    store.log_epoch("k2", e, results::SplitName::train, {{"loss", 1.0 / (e + 1)}});

  trial::RecorderOptions o;
  o.trial_key = "k2";
  o.store = &store;
  {
    trial::Recorder rec(o);
    rec.begin();
    rec.on_resume(1);  // the checkpoint holds epochs 0 and 1
  }
  std::set<std::int64_t> epochs;
  for (const auto& m : store.epoch_metrics("k2")) epochs.insert(m.epoch);
  EXPECT_EQ(epochs, (std::set<std::int64_t>{0, 1}));

  {
    trial::Recorder rec(o);
    rec.begin();
    rec.on_epoch(0, EpochResult::of(0.5, 10), {}, 1.0);  // starting over
  }
  epochs.clear();
  for (const auto& m : store.epoch_metrics("k2")) epochs.insert(m.epoch);
  EXPECT_EQ(epochs, (std::set<std::int64_t>{0}));
}

TEST(Recorder, ExperimentConfigListsEveryHyperparameterAndReplacesTheOldOne) {
  const fs::path dir = test::temp_dir("recorder-config") / "exp";
  std::vector<std::map<std::string, tensorboard::HParamValue>> sessions = {
      {{"lambda", 100.0}, {"model", std::string("ease")}},
      {{"lambda", 500.0}, {"model", std::string("ease")}},
      {{"fusion", std::string("gate")}, {"model", std::string("bert4rec")}}};
  const std::vector<std::string> metrics = {"NDCG@10", "Hit@10"};
  trial::write_experiment_config(dir, sessions, metrics);
  trial::write_experiment_config(dir, sessions, metrics);
  std::size_t files = 0;
  for (const auto& f : fs::directory_iterator(dir)) files += f.is_regular_file();
  EXPECT_EQ(files, 1u);
  bool found = false;
  for (const auto& e : events_in(dir))
    for (const auto& v : e.values) {
      if (v.tag != std::string(tensorboard::hparams_experiment_tag)) continue;
      found = true;
      const auto decoded = tensorboard::decode_hparams_plugin_data(v.plugin_content);
      const auto& x = std::get<tensorboard::HParamsExperiment>(decoded.data);
      std::set<std::string> names;
      for (const auto& h : x.hparams) names.insert(h.name);
      EXPECT_EQ(names, (std::set<std::string>{"fusion", "lambda", "model"}));
      std::map<std::string, tensorboard::MetricSpec> metric_tags;
      for (const auto& m : x.metrics) metric_tags[m.tag] = m;
      ASSERT_TRUE(metric_tags.count("test/NDCG@10"));
      // Test metrics are not typed as validation (TensorBoard has no test type: unknown).
      EXPECT_EQ(metric_tags["test/NDCG@10"].dataset_type, tensorboard::DatasetType::unknown);
      EXPECT_EQ(metric_tags["test/NDCG@10"].display_name, "test NDCG@10");
      // Validation columns read the best epoch's values, not the last epoch's.
      ASSERT_TRUE(metric_tags.count("best/valid/Hit@10"));
      EXPECT_EQ(metric_tags["best/valid/Hit@10"].dataset_type, tensorboard::DatasetType::validation);
      EXPECT_FALSE(metric_tags.count("valid/Hit@10"));
    }
  EXPECT_TRUE(found);
}
