// `recrun predict` and the ensemble with the real binary, real plugins and a real results.db:
// every model type trains and predicts; the lists hold original ids in rank order with seen and
// future items excluded (checked against the data); --split full runs predict; bad requests
// get clear errors; an ensemble is built from finished runs or inline members, refuses a
// member that does not fit, resumes, and predicts.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <algorithm>
#include <cctype>

#include "core/split.hpp"
#include "data/dataset_loader.hpp"
#include "predict/topk.hpp"
#include "results/results_store.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

struct Rec {
  std::string user, item;
  int rank = 0;
  double score = 0;
};

std::vector<Rec> read_csv(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::vector<Rec> out;
  EXPECT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "user,item,rank,score");
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    Rec r;
    std::string rank, score;
    std::getline(ss, r.user, ',');
    std::getline(ss, r.item, ',');
    std::getline(ss, rank, ',');
    std::getline(ss, score, ',');
    r.rank = std::stoi(rank);
    r.score = std::stod(score);
    out.push_back(r);
  }
  return out;
}

class PredictE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(recrun::test::temp_dir("predict-e2e"));
    const auto r = run_command(fmt::format(
        "{} data synth --out {} --users 80 --items 60 --interactions-per-user 10 --min-length 5 "
        "--seed 4",
        recrun::test::recrun_bin(), shell_quote((*dir_ / "data").string())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  static fs::path data() { return *dir_ / "data"; }
  static fs::path res() { return *dir_ / "res"; }

  // `recrun run` of a model; returns its trial key (from results.db).
  static std::string train(const std::string& model, const std::string& extra,
                           const fs::path& data_dir = data()) {
    const auto r = run_command(fmt::format("{} run --model {} --data {} --results {} --threads 1 {}",
                                           recrun::test::recrun_bin(), model,
                                           shell_quote(data_dir.string()),
                                           shell_quote(res().string()), extra));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const auto at = r.output.rfind("recorded as run ");
    if (at == std::string::npos) {
      const auto again = r.output.find("run ");
      (void)again;
      ADD_FAILURE() << "no run key in: " << r.output;
      return "";
    }
    return r.output.substr(at + 16, 32);
  }

  static recrun::test::CommandResult predict(const std::string& args) {
    return run_command(fmt::format("{} predict --results {} --threads 1 {}",
                                   recrun::test::recrun_bin(), shell_quote(res().string()), args));
  }

  static const recrun::Dataset& dataset() {
    static const recrun::Dataset d =
        recrun::data::load_dataset(recrun::test::test_registry(), data(), "auto");
    return d;
  }

  // Every list: original ids of the data, ranks 1..k in order, scores non-increasing, no seen
  // item, no item released after the user's last interaction year (when `future` is excluded).
  static void check_lists(const std::vector<Rec>& recs, std::size_t users, int k, bool future) {
    const auto& d = dataset();
    const auto& years = d.numeric.at("year");
    std::map<std::string, std::vector<Rec>> by_user;
    for (const auto& r : recs) by_user[r.user].push_back(r);
    EXPECT_EQ(by_user.size(), users);
    for (const auto& [user, list] : by_user) {
      const auto u = d.find_user(user);
      ASSERT_TRUE(u) << "unknown user id " << user;
      const auto hist = d.user_items(*u);
      const std::set<std::int32_t> seen(hist.begin(), hist.end());
      const auto times = d.user_times(*u);
      const int last_year =
          recrun::predict::year_of(*std::max_element(times.begin(), times.end()));
      EXPECT_LE(list.size(), static_cast<std::size_t>(k));
      for (std::size_t i = 0; i < list.size(); ++i) {
        EXPECT_EQ(list[i].rank, static_cast<int>(i) + 1);
        if (i > 0) {
          EXPECT_LE(list[i].score, list[i - 1].score);
        }
        const auto item = d.find_item(list[i].item);
        ASSERT_TRUE(item) << "unknown item id " << list[i].item;
        EXPECT_FALSE(seen.count(*item)) << "user " << user << " saw item " << list[i].item;
        if (future && years.present[*item]) {
          EXPECT_LE(years.values[*item], static_cast<float>(last_year))
              << "user " << user << " item " << list[i].item;
        }
      }
    }
  }

  static fs::path* dir_;
};

fs::path* PredictE2E::dir_ = nullptr;

TEST_F(PredictE2E, EveryModelTypePredicts) {
  const std::map<std::string, std::string> models{
      {"popularity", ""},
      {"ease", "--set lambda=50"},
      {"multivae", "--set epochs=2"},
      {"multidae", "--set epochs=2"},
      {"bert4rec", "--set epochs=1 --set hidden_units=16 --set num_heads=1 --set max_len=20"},
      {"sasrec", "--set epochs=1 --set hidden_units=16 --set num_heads=1 --set max_len=20"},
  };
  for (const auto& [model, extra] : models) {
    const std::string key = train(model, extra);
    ASSERT_FALSE(key.empty()) << model;
    const fs::path out = *dir_ / fmt::format("{}.csv", model);
    const auto r = predict(fmt::format("--run {} --topk 7 --out {}", key, shell_quote(out.string())));
    ASSERT_EQ(r.exit_code, 0) << model << ": " << r.output;
    EXPECT_NE(r.output.find("future items excluded"), std::string::npos) << r.output;
    const auto recs = read_csv(out);
    check_lists(recs, static_cast<std::size_t>(dataset().num_users()), 7, /*future=*/true);
  }
}

TEST_F(PredictE2E, TopListMatchesScoresAndFiltersCanBeTurnedOff) {
  const std::string key = train("popularity", "--seed 5");
  const auto r = predict(fmt::format("--run {} --topk 3 --no-exclude-future", key));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // stdout: the CSV; the summary went to stderr (captured together here).
  EXPECT_NE(r.output.find("user,item,rank,score\n"), std::string::npos);
  // Popularity: each user's list is the 3 unseen items most frequent in the training part of
  // the leave-one-out split it was trained on, ties by smaller dense id.
  const auto& d = dataset();
  const auto split = recrun::core::make_split(d, {});
  const auto count_tensor = split.train.item_counts();
  std::vector<std::int64_t> counts(count_tensor.data_ptr<std::int64_t>(),
                                   count_tensor.data_ptr<std::int64_t>() + d.num_items());
  std::istringstream lines(r.output.substr(r.output.find("user,item,rank,score\n") + 21));
  std::string line;
  int checked = 0;
  while (std::getline(lines, line) && checked < 30) {
    if (line.rfind("predict:", 0) == 0) continue;
    std::stringstream ss(line);
    std::string user, item, rank;
    std::getline(ss, user, ',');
    std::getline(ss, item, ',');
    std::getline(ss, rank, ',');
    const auto u = *d.find_user(user);
    const auto hist = d.user_items(u);
    const std::set<std::int32_t> seen(hist.begin(), hist.end());
    std::vector<std::int32_t> order;
    for (std::int32_t i = 0; i < d.num_items(); ++i)
      if (!seen.count(i)) order.push_back(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](auto a, auto b) { return counts[a] > counts[b]; });
    EXPECT_EQ(item, d.item_ids[order[std::stoi(rank) - 1]]) << line;
    ++checked;
  }
  EXPECT_EQ(checked, 30);
}

TEST_F(PredictE2E, UsersFileJsonlAndFullSplit) {
  const std::string key = train("ease", "--split full --min-interactions 1 --set lambda=20");
  const fs::path users = *dir_ / "users.txt";
  const auto& d = dataset();
  std::ofstream(users) << "# two users\n" << d.user_ids[3] << "\n\n" << d.user_ids[0] << "\r\n";
  const fs::path out = *dir_ / "full.jsonl";
  const auto r = predict(fmt::format("--run {} --users {} --format jsonl --topk 4 --out {}", key,
                                     shell_quote(users.string()), shell_quote(out.string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(out);
  std::string first, second, third;
  ASSERT_TRUE(std::getline(in, first));
  ASSERT_TRUE(std::getline(in, second));
  EXPECT_FALSE(std::getline(in, third));
  EXPECT_NE(first.find(fmt::format("\"user\":\"{}\"", d.user_ids[3])), std::string::npos) << first;
  EXPECT_NE(second.find(fmt::format("\"user\":\"{}\"", d.user_ids[0])), std::string::npos);
  EXPECT_NE(first.find("\"items\":["), std::string::npos);

  // An unknown user id is named with its file and line; nothing is written.
  std::ofstream(users) << d.user_ids[1] << "\nnobody-like-this\n";
  const fs::path out2 = *dir_ / "never.csv";
  const auto bad = predict(fmt::format("--run {} --users {} --out {}", key,
                                       shell_quote(users.string()), shell_quote(out2.string())));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("users.txt:2"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("nobody-like-this"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(out2));
}

// A run is named as `results compare` and `results curve` name it: the full key, a unique
// prefix, or id:N; an ambiguous prefix lists its matches.
TEST_F(PredictE2E, ARunIsNamedByKeyPrefixOrId) {
  const std::string key = train("popularity", "--seed 2101");
  ASSERT_EQ(key.size(), 32u);
  const auto id = run_command(fmt::format("sqlite3 {} \"select id from runs where trial_key='{}'\"",
                                          shell_quote((res() / "results.db").string()), key));
  ASSERT_EQ(id.exit_code, 0) << id.output;
  std::string id_text = id.output;
  while (!id_text.empty() && std::isspace(static_cast<unsigned char>(id_text.back()))) id_text.pop_back();
  // The lists (the summary line after them says how fast, which varies).
  const auto lists = [](const std::string& out) { return out.substr(0, out.find("predict: run")); };
  auto full = predict(fmt::format("--run {} --topk 3 --out -", key));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // Every form predicts the same lists as the full key.
  std::string unique_prefix;
  const auto keys = run_command(fmt::format("sqlite3 {} 'select trial_key from runs'",
                                            shell_quote((res() / "results.db").string())));
  std::vector<std::string> all;
  std::istringstream lines(keys.output);
  for (std::string line; std::getline(lines, line);)
    if (line.size() == 32) all.push_back(line);
  for (std::size_t n = 4; n <= 32 && unique_prefix.empty(); ++n) {
    const std::string p = key.substr(0, n);
    if (std::count_if(all.begin(), all.end(), [&](const std::string& k) { return k.starts_with(p); }) == 1)
      unique_prefix = p;
  }
  for (const std::string& form : {unique_prefix, "id:" + id_text}) {
    const auto r = predict(fmt::format("--run {} --topk 3 --out -", form));
    ASSERT_EQ(r.exit_code, 0) << form << ": " << r.output;
    EXPECT_EQ(lists(r.output), lists(full.output)) << form;
    EXPECT_GT(lists(r.output).size(), 100u) << r.output;
  }
  // Train popularity runs until two keys share a first hex digit (at most 17 by pigeonhole).
  std::string ambiguous;
  for (int seed = 2200; ambiguous.empty() && seed < 2220; ++seed) {
    all.push_back(train("popularity", fmt::format("--seed {}", seed)));
    for (std::size_t i = 0; i < all.size() && ambiguous.empty(); ++i)
      for (std::size_t j = i + 1; j < all.size(); ++j)
        if (all[i][0] == all[j][0]) {
          ambiguous = all[i].substr(0, 1);
          break;
        }
  }
  ASSERT_FALSE(ambiguous.empty());
  const auto r = predict(fmt::format("--run {} --topk 3 --out -", ambiguous));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(fmt::format("'{}' starts ", ambiguous)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("give more of the key"), std::string::npos) << r.output;
  const auto bad = predict("--run id:99999 --topk 3 --out -");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("no run has id 99999"), std::string::npos) << bad.output;
}

TEST_F(PredictE2E, ClearErrors) {
  const std::string key = train("popularity", "--seed 9");
  auto r = predict("--run 0123456789abcdef0123456789abcdef");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no run has the key '0123456789abcdef0123456789abcdef'"),
            std::string::npos)
      << r.output;
  r = predict(fmt::format("--run {} --best x", key));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("exactly one of --run KEY and --best"), std::string::npos) << r.output;
  r = predict(fmt::format("--run {} --format xml", key));
  EXPECT_NE(r.output.find("--format 'xml'"), std::string::npos) << r.output;
  r = predict(fmt::format("--run {} --topk 0", key));
  EXPECT_NE(r.output.find("--topk 0"), std::string::npos) << r.output;
  r = predict("--best nosuchexperiment");
  EXPECT_NE(r.output.find("no experiment 'nosuchexperiment'"), std::string::npos) << r.output;

  // The data changed since the run: say so, and offer --data.
  const fs::path copy = *dir_ / "data-copy";
  fs::copy(data(), copy, fs::copy_options::recursive);
  const std::string moved = train("popularity", "--seed 11", copy);
  // Append a repeat of its first interaction: same users and items, other content.
  std::ifstream in(copy / "train_ratings.csv");
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  in.close();
  ASSERT_FALSE(row.empty());
  std::ofstream(copy / "train_ratings.csv", std::ios::app) << row << "\n";
  r = predict(fmt::format("--run {}", moved));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("is not what run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--data"), std::string::npos) << r.output;
  // Pointing --data at the original (identical) data works.
  r = predict(fmt::format("--run {} --data {} --topk 2 --out {}", moved,
                          shell_quote(data().string()),
                          shell_quote((*dir_ / "moved.csv").string())));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(PredictE2E, EnsembleOfFinishedRunsAndInlineMembers) {
  const std::string ease = train("ease", "--set lambda=30 --seed 21");
  const std::string pop = train("popularity", "--seed 21");
  // By key and by query; the run trains nothing, and predicts.
  const std::string ens = train(
      "ensemble", fmt::format("--set members={},best:popularity --set w2=0.5 --seed 21", ease));
  ASSERT_FALSE(ens.empty());
  const fs::path out = *dir_ / "ensemble.csv";
  auto r = predict(fmt::format("--run {} --topk 5 --out {}", ens, shell_quote(out.string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  check_lists(read_csv(out), static_cast<std::size_t>(dataset().num_users()), 5, true);

  // Inline members are trained by the ensemble run and restored from its checkpoint.
  const std::string inl = train(
      "ensemble", "--set 'members=train:ease lambda=30,train:popularity' --set combine=rrf");
  ASSERT_FALSE(inl.empty());
  r = predict(fmt::format("--run {} --topk 5 --out {}", inl,
                          shell_quote((*dir_ / "inline.csv").string())));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // A member that is missing, or trained on other data, fails the run naming itself.
  auto bad = run_command(fmt::format(
      "{} run --model ensemble --data {} --results {} --set members=best:sasrec@nowhere",
      recrun::test::recrun_bin(), shell_quote(data().string()), shell_quote(res().string())));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("ensemble member 1 'best:sasrec@nowhere'"), std::string::npos)
      << bad.output;
  const fs::path other = *dir_ / "other-data";
  ASSERT_EQ(run_command(fmt::format("{} data synth --out {} --users 50 --items 60 --seed 8",
                                    recrun::test::recrun_bin(), shell_quote(other.string())))
                .exit_code,
            0);
  bad = run_command(fmt::format("{} run --model ensemble --data {} --results {} --set members={}",
                                recrun::test::recrun_bin(), shell_quote(other.string()),
                                shell_quote(res().string()), ease));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find(fmt::format("ensemble member 1 '{}'", ease)), std::string::npos)
      << bad.output;
  EXPECT_NE(bad.output.find("trained on other data"), std::string::npos) << bad.output;
  // A member trained under another split is refused too.
  const std::string full = train("popularity", "--split full --min-interactions 1 --seed 30");
  bad = run_command(fmt::format("{} run --model ensemble --data {} --results {} --set members={}",
                                recrun::test::recrun_bin(), shell_quote(data().string()),
                                shell_quote(res().string()), full));
  EXPECT_NE(bad.output.find("trained under another split"), std::string::npos) << bad.output;
  (void)pop;
}

}  // namespace
