// The real binary: `recrun data ...` refuses sizes and counts that make no sense naming the flag,
// embed-titles never writes over the data set's own files, `recrun run` refuses another trial's
// last.ckpt, and running a run again (--force) leaves one event file in its run directory.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support/plugins.hpp"
#include "support/process.hpp"
#include "tensorboard/event_reader.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

recrun::test::CommandResult recrun_cmd(const std::string& args) {
  return run_command(recrun::test::recrun_bin() + " " + args);
}

class IntegrityE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recrun::test::temp_dir("integrity-e2e");
    data_ = dir_ / "data";
    const auto r = recrun_cmd(fmt::format("data synth --out {} --users 60 --items 40 "
                                          "--interactions-per-user 8 --min-length 5 --seed 3",
                                          shell_quote(data_.string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  fs::path dir_, data_;
};

void expect_flag_error(const recrun::test::CommandResult& r, const std::string& flag) {
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(flag), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("bad_alloc"), std::string::npos) << r.output;
}

TEST_F(IntegrityE2E, DataCommandsRefuseImpossibleSizesAndCountsNamingTheFlag) {
  const std::string out = shell_quote((dir_ / "huge").string());
  expect_flag_error(recrun_cmd("data synth --users 100000000000000 --out " + out), "--users");
  expect_flag_error(recrun_cmd("data synth --users 1e14 --out " + out), "--users");
  expect_flag_error(recrun_cmd("data synth --items 3000000000 --out " + out), "--items");
  expect_flag_error(recrun_cmd("data synth --interactions-per-user nan --out " + out),
                    "--interactions-per-user");
  EXPECT_FALSE(fs::exists(dir_ / "huge" / "train_ratings.csv"));
  const std::string d = shell_quote(data_.string());
  for (const char* v : {"-1", "0", "nan"}) {
    expect_flag_error(recrun_cmd(fmt::format("data stats {} --top {}", d, v)), "--top");
    expect_flag_error(recrun_cmd(fmt::format("data bench {} --repeat {}", d, v)), "--repeat");
    expect_flag_error(recrun_cmd(fmt::format("data embed-titles {} --dim {} --out {}", d, v,
                                             shell_quote((dir_ / "e.tsv").string()))),
                      "--dim");
  }
  expect_flag_error(recrun_cmd(fmt::format("data convert --from {} --to {} --title-dim -1", d,
                                           shell_quote((dir_ / "conv").string()))),
                    "--title-dim");
  // Sensible values still work.
  const auto ok = recrun_cmd(fmt::format("data stats {} --top 3", d));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST_F(IntegrityE2E, EmbedTitlesNeverWritesOverTheDataSetsInputs) {
  const std::string before = slurp(data_ / "train_ratings.csv");
  ASSERT_FALSE(before.empty());
  const std::string d = shell_quote(data_.string());
  for (const char* victim : {"train_ratings.csv", "titles.tsv"}) {
    if (!fs::exists(data_ / victim)) continue;
    const std::string kept = slurp(data_ / victim);
    const auto r = recrun_cmd(fmt::format("data embed-titles {} --dim 4 --out {} --force", d,
                                          shell_quote((data_ / victim).string())));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("input file of the data set"), std::string::npos) << r.output;
    EXPECT_EQ(slurp(data_ / victim), kept) << victim << " was overwritten";
  }
  // Its own output, title_embeddings.tsv, it may replace.
  auto r = recrun_cmd(fmt::format("data embed-titles {} --dim 4", d));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = recrun_cmd(fmt::format("data embed-titles {} --dim 4 --force", d));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(slurp(data_ / "train_ratings.csv"), before);
}

TEST_F(IntegrityE2E, RunRefusesAnotherTrialsCheckpointAndARerunLeavesOneEventFile) {
  const fs::path results = dir_ / "results";
  const fs::path ckpt = dir_ / "ckpt";
  const auto run = [&](const std::string& lr, std::int64_t epochs, bool with_ckpt,
                       bool force = false, const std::string& extra = "") {
    return recrun_cmd(fmt::format(
        "run --model multivae --data {} --set lr={} --set epochs={} --set hidden=16 --set latent=4 "
        "--set batch_size=20 --checkpoint-every 0 --results {}{}{}{}",
        shell_quote(data_.string()), lr, epochs, shell_quote(results.string()),
        with_ckpt ? " --checkpoint-dir " + shell_quote(ckpt.string()) : std::string(),
        force ? " --force" : "", extra));
  };
  // --checkpoints last keeps the lr=0.003 trial's last.ckpt in the directory, as an interrupted
  // run would leave it.
  auto first = run("0.003", 2, true, false, " --checkpoints last");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto other = run("0.01", 3, true);
  EXPECT_NE(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find((ckpt / "last.ckpt").string()), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("belongs to trial"), std::string::npos) << other.output;

  // The same run twice (the second with --force: a finished run is otherwise only reported):
  // one event file, each point once.
  fs::path tb_dir;
  for (int i = 0; i < 2; ++i) {
    const auto r = run("0.02", 2, false, /*force=*/i == 1);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // "...; events in DIR"
    const auto at = r.output.rfind("events in ");
    ASSERT_NE(at, std::string::npos) << r.output;
    const auto end = r.output.find('\n', at);
    tb_dir = r.output.substr(at + 10, end == std::string::npos ? std::string::npos : end - at - 10);
  }
  ASSERT_TRUE(fs::is_directory(tb_dir)) << tb_dir;
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(tb_dir)) files.push_back(f.path());
  ASSERT_EQ(files.size(), 1u);
  std::map<std::pair<std::string, std::int64_t>, int> seen;
  for (const auto& e : recrun::tensorboard::read_event_file(files[0]))
    for (const auto& v : e.values) {
      const int n = ++seen[std::make_pair(v.tag, e.step)];
      EXPECT_EQ(n, 1) << v.tag << " " << e.step;
    }
}

}  // namespace
