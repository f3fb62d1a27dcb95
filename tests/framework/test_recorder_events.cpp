// Event files of a run that is resumed or run again: one coherent file set, every point once.
// A resumed attempt keeps the earlier attempts' points up to its checkpoint (not past it: those
// epochs are trained again), and a fresh attempt replaces the earlier attempts' files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "trial/recorder.hpp"
#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "tensorboard/event_reader.hpp"
#include "tensorboard/hparams.hpp"

namespace fs = std::filesystem;
using namespace recrun;

namespace {

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& f : fs::directory_iterator(dir))
    if (f.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(f.path());
  return out;
}

// (tag, step) -> how many times it was written, and the last value, over every file.
struct Points {
  std::map<std::pair<std::string, std::int64_t>, int> count;
  std::map<std::pair<std::string, std::int64_t>, double> value;
};

Points points_in(const fs::path& dir) {
  Points p;
  for (const auto& file : event_files(dir))
    for (const auto& e : tensorboard::read_event_file(file, {.allow_truncated_tail = true}))
      for (const auto& v : e.values) {
        ++p.count[{v.tag, e.step}];
        if (auto s = v.scalar()) p.value[{v.tag, e.step}] = *s;
      }
  return p;
}

core::EvalResult eval_of(double ndcg) {
  core::EvalResult r;
  r.metrics = {{"NDCG@10", ndcg}};
  r.users = 10;
  return r;
}

trial::RecorderOptions options_for(const fs::path& tb_dir) {
  trial::RecorderOptions o;
  o.trial_key = "k";
  o.tensorboard_dir = tb_dir;
  o.hparams = {{"lr", 0.01}};
  o.hparams_group = "g";
  return o;
}

void epochs(trial::Recorder& rec, std::int64_t from, std::int64_t to, double loss_offset) {
  for (std::int64_t e = from; e < to; ++e) {
    rec.on_epoch(e, EpochResult::of(loss_offset + 1.0 / (e + 1), 100), {}, 0.5);
    rec.on_validation(e, eval_of(0.1 * e), {}, true);
  }
}

void expect_every_point_once(const Points& p) {
  for (const auto& [key, n] : p.count) EXPECT_EQ(n, 1) << key.first << " at step " << key.second;
}

TEST(RecorderEvents, AResumeAfterAKillWritesNoPointTwice) {
  const fs::path dir = test::temp_dir("recorder-kill") / "run";
  const auto o = options_for(dir);
  {
    // The first attempt trains epochs 0..3, its checkpoint holds 0..1, and then it is killed
    // with -9: no session end, and half a record at the end of its file.
    trial::Recorder rec(o);
    rec.begin();
    epochs(rec, 0, 4, 0.0);
    std::ofstream(rec.event_file(), std::ios::binary | std::ios::app) << std::string("\x30\x00\x00", 3);
  }
  {
    trial::Recorder rec(o);
    rec.begin();
    rec.on_resume(1);
    epochs(rec, 2, 5, 10.0);  // epochs 2.. again, distinguishable by their loss
    rec.on_test(eval_of(0.4));
    core::RunOutcome out;
    rec.end(&out);
  }
  EXPECT_EQ(event_files(dir).size(), 1u);
  const Points p = points_in(dir);
  expect_every_point_once(p);
  for (std::int64_t e = 0; e < 5; ++e) EXPECT_EQ(p.count.count({"train/loss", e}), 1u) << e;
  EXPECT_NEAR(p.value.at({"train/loss", 1}), 0.5, 1e-6);          // kept from the first attempt
  EXPECT_NEAR(p.value.at({"train/loss", 2}), 10.0 + 1.0 / 3, 1e-5);  // written by the resume
  EXPECT_EQ(p.count.count({std::string(tensorboard::hparams_session_start_tag), 0}), 1u);
  EXPECT_EQ(p.count.count({std::string(tensorboard::hparams_session_end_tag), 0}), 1u);
}

TEST(RecorderEvents, ASecondResumeStillHoldsEveryPointOnce) {
  const fs::path dir = test::temp_dir("recorder-resume2") / "run";
  const auto o = options_for(dir);
  {
    trial::Recorder rec(o);
    rec.begin();
    epochs(rec, 0, 3, 0.0);
  }
  {
    trial::Recorder rec(o);
    rec.begin();
    rec.on_resume(1);
    epochs(rec, 2, 4, 0.0);
  }
  {
    trial::Recorder rec(o);
    rec.begin();
    rec.on_resume(3);
    epochs(rec, 4, 6, 0.0);
    core::RunOutcome out;
    rec.end(&out);
  }
  EXPECT_EQ(event_files(dir).size(), 1u);
  const Points p = points_in(dir);
  expect_every_point_once(p);
  for (std::int64_t e = 0; e < 6; ++e) EXPECT_EQ(p.count.count({"valid/NDCG@10", e}), 1u) << e;
}

TEST(RecorderEvents, ARunStartedAfreshReplacesTheEarlierAttemptsFiles) {
  const fs::path dir = test::temp_dir("recorder-rerun") / "run";
  const auto o = options_for(dir);
  for (int attempt = 0; attempt < 2; ++attempt) {
    trial::Recorder rec(o);
    rec.begin();
    epochs(rec, 0, 3, attempt * 10.0);
    rec.on_test(eval_of(0.3));
    core::RunOutcome out;
    rec.end(&out);
  }
  EXPECT_EQ(event_files(dir).size(), 1u);
  const Points p = points_in(dir);
  expect_every_point_once(p);
  EXPECT_NEAR(p.value.at({"train/loss", 0}), 11.0, 1e-6);  // the second attempt's
}

TEST(RecorderEvents, AnAttemptThatFailsBeforeTrainingKeepsTheEarlierCurve) {
  const fs::path dir = test::temp_dir("recorder-failed") / "run";
  const auto o = options_for(dir);
  {
    trial::Recorder rec(o);
    rec.begin();
    epochs(rec, 0, 2, 0.0);
  }
  {
    trial::Recorder rec(o);
    rec.begin();
    rec.end(nullptr);  // e.g. its checkpoint could not be read: nothing to start over from
  }
  const Points p = points_in(dir);
  EXPECT_EQ(p.count.count({"train/loss", 1}), 1u);
}

}  // namespace
