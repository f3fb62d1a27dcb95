// Issue 20 ("Nothing overwritten, nothing hangs") against the real binary: files are written whole
// through one atomic writer with unique temporary names; user-named outputs never destroy
// results, data, checkpoints, inputs or device nodes; checkpoints are bound to their run; a FIFO
// among the plugins hangs nothing; Slurm calls are bounded; input bytes never reach a terminal
// raw; read-only archives stay readable. Every path a test touches is inside its own temporary
// directory (device nodes are made there with mknod).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "support/plugins.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using recrun::test::CommandResult;
using recrun::test::recrun_bin;
using recrun::test::run_command;
using recrun::test::shell_quote;

namespace {

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string q(const fs::path& p) { return shell_quote(p.string()); }

// A fresh synthetic data set and two finished EASE runs in a directory of the test's own (the
// issue's set-up): data/, res/results.db, res/checkpoints/runs/{A,B}/best.ckpt.
class HostilePathsE2E : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = recrun::test::temp_dir("hostile-paths"); }

  CommandResult recrun(const std::string& args, int timeout_s = 120) {
    return run_command(fmt::format("cd {} && timeout {} {} {}", q(dir_), timeout_s, recrun_bin(),
                                   args));
  }
  void make_data() {
    const auto r = recrun(fmt::format("data synth --out {} --users 60 --items 40 --seed 1", q(data())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // Trains EASE with lambda `l`; returns the trial key.
  std::string train(int l, const std::string& extra = "") {
    const auto r = recrun(fmt::format("run --model ease --data {} --results {} --set lambda={} "
                                      "--threads 1 {}",
                                      q(data()), q(res()), l, extra));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const auto at = r.output.rfind("recorded as run ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no run key in: " << r.output;
      return "";
    }
    return r.output.substr(at + 16, 32);
  }
  void make_runs() {
    make_data();
    a_ = train(10);
    b_ = train(500);
  }
  CommandResult predict(const std::string& args) {
    return recrun(fmt::format("predict --results {} --threads 1 {}", q(res()), args));
  }
  fs::path data() const { return dir_ / "data"; }
  fs::path res() const { return dir_ / "res"; }
  fs::path ckpt(const std::string& key) const { return res() / "checkpoints" / "runs" / key; }

  fs::path dir_;
  std::string a_, b_;
};

}  // namespace

// 1. One atomic writer: its temporary file has a unique name, so a stale or hostile file where
// the old fixed name (best.ckpt.tmp) was neither hangs the write (a FIFO) nor breaks it (a
// directory), and nothing is left behind.
TEST_F(HostilePathsE2E, CheckpointsAreWrittenThroughAUniqueTemporaryFile) {
  make_data();
  const fs::path ck = dir_ / "ck";
  fs::create_directories(ck);
  ASSERT_EQ(::mkfifo((ck / "best.ckpt.tmp").c_str(), 0644), 0);
  fs::create_directories(ck / "last.ckpt.tmp");
  const auto r = recrun(fmt::format("run --model ease --data {} --results {} --threads 1 "
                                    "--checkpoint-dir {} --checkpoint-every 0",
                                    q(data()), q(res()), q(ck)),
                        60);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::is_regular_file(ck / "best.ckpt"));
  EXPECT_TRUE(fs::is_fifo(ck / "best.ckpt.tmp"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ck)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"best.ckpt", "best.ckpt.tmp", "last.ckpt.tmp"}))
      << fmt::format("{}", fmt::join(names, " "));
  // The page of `data stats --html` goes through the same writer: whole, and nothing beside it.
  const auto s = recrun(fmt::format("data stats {} --html --out {}", q(data()), q(dir_ / "s.html")));
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_TRUE(has(slurp(dir_ / "s.html"), "</html>"));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_FALSE(has(e.path().filename().string(), ".tmp")) << e.path();
}

// 2. One output-path policy: --out never replaces results.db, a checkpoint, the data set's
// inputs, the command's own inputs, a device, a FIFO or a directory (--force or not), nor an
// existing file without --force; `-` is standard output.
TEST_F(HostilePathsE2E, OutputPathsNeverDestroyResultsDataInputsOrDevices) {
  make_runs();
  const std::string db = slurp(res() / "results.db");
  const std::string ratings = slurp(data() / "train_ratings.csv");
  const std::string best = slurp(ckpt(a_) / "best.ckpt");
  std::ofstream(dir_ / "users.txt") << "u1\n";  // not necessarily an id: refused before reading
  ASSERT_EQ(::mknod((dir_ / "null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0644), 0);
  fs::create_directories(dir_ / "folder");
  fs::create_symlink(res() / "results.db", dir_ / "link.db");
  const auto refused = [&](const std::string& args, const std::string& says) {
    const auto r = recrun(args, 60);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, says)) << args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "--out")) << args << "\n" << r.output;
  };
  const std::string run = fmt::format("predict --results {} --threads 1 --run {} ", q(res()), a_);
  for (const char* force : {"", "--force"}) {
    refused(run + force + " --out " + q(res() / "results.db"), "the results database");
    refused(run + force + " --out " + q(res() / "results.db-wal"), "the results database");
    refused(run + force + " --out " + q(dir_ / "link.db"), "the results database");
    refused(run + force + " --out " + q(ckpt(a_) / "best.ckpt"), "checkpoints");
    refused(run + force + " --out " + q(data() / "train_ratings.csv"), "input file of the data set");
    refused(run + force + " --users " + q(dir_ / "users.txt") + " --out " + q(dir_ / "users.txt"),
            "the --users file");
    refused(run + force + " --out " + q(dir_ / "null"), "a character device");
    refused(run + force + " --out " + q(dir_ / "fifo"), "a FIFO");
    refused(run + force + " --out " + q(dir_ / "folder"), "a directory");
    refused(fmt::format("report x --results {} {} --out {}", q(res()), force, q(res() / "results.db")),
            "the results database");
    refused(fmt::format("report x --results {} {} --out {}", q(res()), force, q(dir_ / "null")),
            "a character device");
    refused(fmt::format("data stats {} --html {} --out {}", q(data()), force,
                        q(data() / "train_ratings.csv")),
            "input file of the data set");
    refused(fmt::format("data stats {} --html {} --out {}", q(data()), force, q(dir_ / "fifo")),
            "a FIFO");
  }
  EXPECT_EQ(slurp(res() / "results.db"), db);
  EXPECT_EQ(slurp(data() / "train_ratings.csv"), ratings);
  EXPECT_EQ(slurp(ckpt(a_) / "best.ckpt"), best);
  EXPECT_EQ(slurp(dir_ / "users.txt"), "u1\n");
  struct stat st {};
  ASSERT_EQ(::lstat((dir_ / "null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  ASSERT_EQ(::lstat((dir_ / "fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // An existing regular file needs --force; `-` is standard output.
  std::ofstream(dir_ / "mine.csv") << "keep me\n";
  refused(run + "--out " + q(dir_ / "mine.csv"), "already exists; pass --force");
  EXPECT_EQ(slurp(dir_ / "mine.csv"), "keep me\n");
  const auto forced = recrun(run + "--force --out " + q(dir_ / "mine.csv"));
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_TRUE(slurp(dir_ / "mine.csv").starts_with("user,item,rank,score\n"));
  const auto out = recrun(run + "--out -");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(has(out.output, "user,item,rank,score\n"));

  // data synth / convert into a directory whose files are devices or FIFOs, or into a file.
  fs::create_directories(dir_ / "d2");
  ASSERT_EQ(::mkfifo((dir_ / "d2" / "train_ratings.csv").c_str(), 0644), 0);
  const auto synth = recrun(fmt::format("data synth --out {} --users 20 --items 10 --force",
                                        q(dir_ / "d2")),
                            60);
  EXPECT_EQ(synth.exit_code, 1) << synth.output;
  EXPECT_TRUE(has(synth.output, "a FIFO")) << synth.output;
  const auto into_file = recrun(fmt::format("data synth --out {} --users 20 --items 10",
                                            q(dir_ / "mine.csv")));
  EXPECT_EQ(into_file.exit_code, 1) << into_file.output;
  EXPECT_TRUE(has(into_file.output, "not a directory")) << into_file.output;
}

// 3. best.ckpt is bound to its trial and attempt: another run's valid checkpoint (same model,
// same data) is refused by predict and by ensemble member loading, naming both trials.
TEST_F(HostilePathsE2E, ACheckpointOfAnotherRunIsRefusedNamingBoth) {
  make_runs();
  const auto before = predict("--run " + a_);
  ASSERT_EQ(before.exit_code, 0) << before.output;
  fs::copy_file(ckpt(a_) / "best.ckpt", dir_ / "a1.ckpt");
  fs::copy_file(ckpt(b_) / "best.ckpt", ckpt(a_) / "best.ckpt",
                fs::copy_options::overwrite_existing);
  const auto r = predict("--run " + a_);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "belongs to trial " + b_)) << r.output;
  EXPECT_TRUE(has(r.output, "not to trial " + a_)) << r.output;
  const auto member = recrun(fmt::format("run --model ensemble --data {} --results {} --threads 1 "
                                         "--set members={},{}",
                                         q(data()), q(res()), b_, a_));
  EXPECT_NE(member.exit_code, 0) << member.output;
  EXPECT_TRUE(has(member.output, "belongs to trial " + b_)) << member.output;
  // Trained again (--force, attempt 2), the run predicts; the first attempt's checkpoint put in
  // place of the second's is refused, naming both attempts.
  EXPECT_EQ(train(10, "--force"), a_);
  const auto after = predict("--run " + a_);
  EXPECT_EQ(after.exit_code, 0) << after.output;
  const auto row_ckpt = run_command(fmt::format("sqlite3 {} \"select checkpoint_path from runs "
                                                "where trial_key='{}'\"",
                                                q(res() / "results.db"), a_));
  ASSERT_EQ(row_ckpt.exit_code, 0) << row_ckpt.output;
  const fs::path current = row_ckpt.output.substr(0, row_ckpt.output.find('\n'));
  ASSERT_TRUE(fs::is_regular_file(current)) << current;
  fs::copy_file(dir_ / "a1.ckpt", current, fs::copy_options::overwrite_existing);
  const auto old = predict("--run " + a_);
  EXPECT_EQ(old.exit_code, 1) << old.output;
  EXPECT_TRUE(has(old.output, fmt::format("belongs to trial {} (attempt 1), not to trial {} "
                                          "(attempt 2)",
                                          a_, a_)))
      << old.output;
}

namespace {

// Writes an executable shell script `name` into `bin`.
void fake_tool(const fs::path& bin, const std::string& name, const std::string& body) {
  fs::create_directories(bin);
  std::ofstream(bin / name) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(bin / name, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

}  // namespace

// 5. Every Slurm call is bounded: an sbatch that never answers is given up on with a clear
// message, and the submission it never made leaves no folder and no shard behind; --wait on a
// controller that never answers gives up after a bounded number of polls, naming it.
TEST_F(HostilePathsE2E, SlurmCallsAreBoundedAndAFailedSubmissionLeavesNothing) {
  make_data();
  std::ofstream(dir_ / "x.toml") << "[experiment]\nname = \"x\"\n[data]\npath = \"data\"\n"
                                    "[[group]]\nmodel = \"popularity\"\n";
  const fs::path bin = dir_ / "bin";
  fake_tool(bin, "sbatch", "sleep 1000");
  fake_tool(bin, "sacct", "sleep 1000");
  fake_tool(bin, "scontrol",
            "if [ \"$1\" = ping ]; then echo 'Slurmctld(primary) at fakehost is DOWN'; exit 1; fi\n"
            "sleep 1000");
  const std::string env = fmt::format("PATH={}:$PATH RECRUN_SLURM_TIMEOUT=1", q(bin));
  // Bounded is what the message and the exit code show (a hang would be timeout's 124); no
  // clock is read here, since a loaded machine may take a while to start recrun.
  const auto r = run_command(fmt::format("cd {} && {} timeout 300 {} sweep x.toml --results res "
                                         "--executor slurm",
                                         q(dir_), env, recrun_bin()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "sbatch did not answer within 1 s")) << r.output;
  EXPECT_TRUE(has(r.output, "RECRUN_SLURM_TIMEOUT")) << r.output;
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(res() / "slurm" / "x", ec) || !fs::exists(res() / "slurm" / "x"));
  if (fs::exists(res() / "shards"))
    for (const auto& e : fs::directory_iterator(res() / "shards"))
      ADD_FAILURE() << "left behind: " << e.path();

  // Submitted (an sbatch that answers), then a controller that never answers: --wait stops.
  fake_tool(bin, "sbatch", "echo 4242");
  const auto w = run_command(fmt::format("cd {} && {} timeout 300 {} sweep x.toml --results res "
                                         "--executor slurm --wait --poll-interval 0.1",
                                         q(dir_), env, recrun_bin()));
  EXPECT_EQ(w.exit_code, 1) << w.output;
  EXPECT_TRUE(has(w.output, "slurm job 4242: the Slurm controller did not answer 10 polls in a "
                            "row"))
      << w.output;
  EXPECT_TRUE(has(w.output, "fakehost is DOWN")) << w.output;
  EXPECT_TRUE(has(w.output, "--collect")) << w.output;
}

// 7. Commands that only read open results.db read-only: on a read-only mount (a private one, in
// a mount namespace of the command's own: chmod does not stop root) `results list`, `predict`
// and `report` work and nothing is written there.
TEST_F(HostilePathsE2E, ReadOnlyArchivesAreReadable) {
  make_runs();
  std::ofstream(dir_ / "x.toml") << "[experiment]\nname = \"x\"\n[data]\npath = \"data\"\n"
                                    "[[group]]\nmodel = \"ease\"\n";
  const auto sweep = recrun(fmt::format("sweep x.toml --results {} --threads 1", q(res())));
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  const std::string before = slurp(res() / "results.db");
  const auto probe = run_command("unshare -m true");
  if (probe.exit_code != 0) GTEST_SKIP() << "no mount namespaces here: " << probe.output;
  const std::string mount = fmt::format("mount --bind {0} {0} && mount -o remount,ro,bind {0} && ",
                                        q(res()));
  const auto in_ro = [&](const std::string& args) {
    return run_command(fmt::format("cd {} && unshare -m sh -c {}", q(dir_),
                                   shell_quote(mount + "touch " + q(res() / "probe") +
                                               " 2>/dev/null && echo WRITABLE; " + recrun_bin() +
                                               " " + args)));
  };
  const auto list = in_ro(fmt::format("results list --results {}", q(res())));
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_FALSE(has(list.output, "WRITABLE")) << "the mount is not read-only";
  EXPECT_TRUE(has(list.output, a_.substr(0, 8))) << list.output;
  const auto pred = in_ro(fmt::format("predict --results {} --run {} --threads 1 --out {}",
                                      q(res()), a_, q(dir_ / "p.csv")));
  EXPECT_EQ(pred.exit_code, 0) << pred.output;
  EXPECT_TRUE(slurp(dir_ / "p.csv").starts_with("user,item,rank,score\n"));
  const auto rep = in_ro(fmt::format("report x --results {} --out {}", q(res()),
                                     q(dir_ / "r.html")));
  EXPECT_EQ(rep.exit_code, 0) << rep.output;
  EXPECT_TRUE(has(slurp(dir_ / "r.html"), "</html>"));
  EXPECT_EQ(slurp(res() / "results.db"), before);
}

// 6. No input byte reaches the terminal raw: headers, ids, file names and parameter values in
// messages are escaped (\xNN) by one function, text::printable (and text::terminal_safe for a
// whole message).
TEST_F(HostilePathsE2E, InputBytesNeverReachTheTerminalRaw) {
  const std::string esc = "\x1b]0;PWNED\x07\x1b[2J";
  const auto no_raw = [&](const CommandResult& r, const std::string& what) {
    EXPECT_NE(r.exit_code, 0) << what << "\n" << r.output;
    EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << what << ": raw ESC in\n" << r.output;
    EXPECT_EQ(r.output.find('\x07'), std::string::npos) << what << ": raw BEL in\n" << r.output;
    EXPECT_TRUE(has(r.output, "\\x1b")) << what << "\n" << r.output;
  };
  fs::create_directories(dir_ / "e");
  std::ofstream(dir_ / "e" / "train_ratings.csv") << esc << "x,item,time\n1,2,3\n";
  const auto header = recrun(fmt::format("data stats {}", q(dir_ / "e")));
  no_raw(header, "header");
  EXPECT_TRUE(has(header.output, "missing column 'user'")) << header.output;
  EXPECT_TRUE(has(header.output, "\\x1b]0;PWNED\\x07\\x1b[2Jx")) << header.output;

  const fs::path odd = dir_ / (esc + "dir");
  no_raw(recrun("data stats " + q(odd)), "directory name");
  make_runs();
  no_raw(recrun(fmt::format("run --model ease --data {} --results {} --set lambda={}", q(data()),
                            q(res()), q(esc))),
         "parameter value");
  std::ofstream(dir_ / "users.txt") << esc << "\n";
  no_raw(predict(fmt::format("--run {} --users {}", a_, q(dir_ / "users.txt"))), "user id");
  no_raw(predict(fmt::format("--run {} --out {}", a_, q(dir_ / "folder" / esc / "x.csv"))),
         "output file name");
}

// 9. A name too long to be a file name is refused by the dry run, and an empty --results too.
TEST_F(HostilePathsE2E, LongNamesAndAnEmptyResultsAreRefusedUpFront) {
  make_data();
  const std::string name(300, 'n');
  std::ofstream(dir_ / "long.toml") << "[experiment]\nname = \"" << name << "\"\n[data]\npath = "
                                       "\"data\"\n[[group]]\nmodel = \"popularity\"\n";
  const auto dry = recrun("sweep long.toml --dry-run --results res");
  EXPECT_EQ(dry.exit_code, 1) << dry.output;
  EXPECT_TRUE(has(dry.output, "is 300 characters long; at most 100")) << dry.output;
  std::ofstream(dir_ / "group.toml") << "[experiment]\nname = \"g\"\n[data]\npath = \"data\"\n"
                                        "[[group]]\nname = \"" << name << "\"\nmodel = \"popularity\"\n";
  const auto group = recrun("sweep group.toml --dry-run --results res");
  EXPECT_EQ(group.exit_code, 1) << group.output;
  EXPECT_TRUE(has(group.output, "300 characters")) << group.output;
  EXPECT_FALSE(fs::exists(res()));
  for (const std::string& cmd :
       {std::string("sweep long.toml --results ''"),
        fmt::format("run --model popularity --data {} --results ''", q(data())),
        std::string("results list --results ''"), std::string("report x --results ''"),
        std::string("predict --run 0123 --results ''")}) {
    const auto r = recrun(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "--results is empty")) << cmd << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(dir_ / "results.db"));
}

// 10. Density counts distinct (user, item) pairs: repeated rows do not push it past 100%.
TEST_F(HostilePathsE2E, DensityCountsDistinctPairs) {
  fs::create_directories(dir_ / "dup");
  std::ofstream(dir_ / "dup" / "train_ratings.csv")
      << "user,item,time\n1,1,1\n1,1,2\n1,1,3\n1,1,4\n1,2,5\n2,1,6\n2,1,7\n2,1,8\n";
  const auto r = recrun(fmt::format("data stats {} --no-cache", q(dir_ / "dup")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 2 users x 2 items, 3 distinct pairs of 8 rows: 75%, not 200%.
  EXPECT_TRUE(has(r.output, "75")) << r.output;
  EXPECT_TRUE(has(r.output, "(sparsity 25")) << r.output;
}

// 11. The messages that were unclear say what is wrong, where, and how to fix it.
TEST_F(HostilePathsE2E, UnclearMessagesNowSayWhatWhereAndHow) {
  const auto says = [&](const std::string& args, std::initializer_list<std::string> parts) {
    const auto r = recrun(args, 60);
    EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
    EXPECT_NE(r.exit_code, 124) << args << " hung";
    for (const auto& p : parts) EXPECT_TRUE(has(r.output, p)) << args << "\n" << r.output;
    return r;
  };
  // train_ratings.csv that is a FIFO, a directory, a device, a symlink loop.
  const auto bad_data = [&](const std::string& tag, const std::function<void(const fs::path&)>& make,
                            const std::string& kind) {
    const fs::path d = dir_ / tag;
    fs::create_directories(d);
    make(d / "train_ratings.csv");
    says("data stats " + q(d), {(d / "train_ratings.csv").string(), kind, "not a regular file"});
  };
  bad_data("fifo", [](const fs::path& f) { ASSERT_EQ(::mkfifo(f.c_str(), 0644), 0); }, "a FIFO");
  bad_data("dir", [](const fs::path& f) { fs::create_directories(f); }, "a directory");
  bad_data("dev", [](const fs::path& f) {
    ASSERT_EQ(::mknod(f.c_str(), S_IFCHR | 0666, ::makedev(1, 5)), 0);
  }, "a character device");
  bad_data("loop", [](const fs::path& f) { fs::create_symlink(f.filename(), f); },
           "a symbolic link loop");
  // A data directory or a plugin directory that is a file.
  std::ofstream(dir_ / "plain") << "x\n";
  says("data stats " + q(dir_ / "plain"), {"is a regular file, not a directory"});
  const auto plugins = recrun("plugins --plugin-dir " + q(dir_ / "plain"));
  EXPECT_TRUE(has(plugins.output, "plugin directory is a regular file, not a directory"))
      << plugins.output;

  make_runs();
  // A checkpoint that is a directory or a FIFO.
  fs::rename(ckpt(a_) / "best.ckpt", dir_ / "a.ckpt");
  fs::create_directories(ckpt(a_) / "best.ckpt");
  says(fmt::format("predict --results {} --run {}", q(res()), a_),
       {"best.ckpt is a directory, not a checkpoint file", "train the run again"});
  fs::remove(ckpt(a_) / "best.ckpt");
  ASSERT_EQ(::mkfifo((ckpt(a_) / "best.ckpt").c_str(), 0644), 0);
  says(fmt::format("predict --results {} --run {}", q(res()), a_),
       {"best.ckpt is a FIFO (named pipe), not a checkpoint file"});

  // results.db that is a device (made here: c 1 5 is /dev/zero's number) or another program's.
  const fs::path zero = dir_ / "zero";
  fs::create_directories(zero);
  ASSERT_EQ(::mknod((zero / "results.db").c_str(), S_IFCHR | 0666, ::makedev(1, 5)), 0);
  says("results list --results " + q(zero), {"results.db is a character device, not a results database"});
  says(fmt::format("run --model popularity --data {} --results {}", q(data()), q(zero)),
       {"results.db is a character device, not a results database"});
  const fs::path foreign = dir_ / "foreign";
  fs::create_directories(foreign);
  ASSERT_EQ(run_command("sqlite3 " + q(foreign / "results.db") +
                        " 'create table runs (x); create table notes (y)'")
                .exit_code,
            0);
  const std::string foreign_before = slurp(foreign / "results.db");
  for (const std::string& cmd :
       {"results list --results " + q(foreign),
        fmt::format("run --model popularity --data {} --results {}", q(data()), q(foreign))})
    says(cmd, {"not a recrun results database", "its tables: notes, runs"});
  EXPECT_EQ(slurp(foreign / "results.db"), foreign_before);

  // A NUL byte in a header, CR-only line endings.
  fs::create_directories(dir_ / "nul");
  std::ofstream(dir_ / "nul" / "train_ratings.csv", std::ios::binary)
      << std::string("us\0er,item,time\n1,2,3\n", 22);
  says("data stats " + q(dir_ / "nul"), {"missing column 'user'", "us\\x00er", "train_ratings.csv:1"});
  fs::create_directories(dir_ / "cr");
  std::ofstream(dir_ / "cr" / "train_ratings.csv", std::ios::binary)
      << "user,item,time\r1,2,3\r1,3,4\r2,2,5\r";
  says("data stats " + q(dir_ / "cr"), {"carriage return alone", "LF line endings"});

  // predict to a closed standard output.
  const auto closed = run_command(fmt::format("cd {} && ({} predict --results {} --run {} >&-)",
                                              q(dir_), recrun_bin(), q(res()), b_));
  EXPECT_EQ(closed.exit_code, 1) << closed.output;
  EXPECT_TRUE(has(closed.output, "standard output is closed")) << closed.output;
}

// 8. A `recrun run` stopped by SIGTERM (or a --nproc 2 run by Ctrl-C) marks its row interrupted
// on the way out instead of leaving it 'running'.
TEST_F(HostilePathsE2E, ASignalledRunIsMarkedInterrupted) {
  make_data();
  const auto status_of_run = [&](const fs::path& results) {
    const auto r = run_command(fmt::format("sqlite3 {} 'select status from runs'",
                                           q(results / "results.db")));
    return r.output.substr(0, r.output.find('\n'));
  };
  const auto stopped = [&](const fs::path& results, const std::string& extra, const char* sig) {
    // The run starts in the background; once its row is running, the signal goes to recrun.
    const auto r = run_command(fmt::format(
        "cd {dir} && ({bin} run --model crashy --plugin-dir {fix} --data {data} --results {res} "
        "--threads 1 --set epoch_sleep=2 --set epochs=50 {extra} > {res}.log 2>&1 & pid=$!; "
        "for i in $(seq 1200); do [ \"$(sqlite3 {res}/results.db 'select status from runs' "
        "2>/dev/null)\" = running ] && break; sleep 0.1; done; kill -{sig} $pid; wait $pid; "
        "echo exit=$?)",
        fmt::arg("dir", q(dir_)), fmt::arg("bin", recrun_bin()),
        fmt::arg("fix", q(recrun::test::fixture_plugin_dir())), fmt::arg("data", q(data())),
        fmt::arg("res", q(results)), fmt::arg("extra", extra), fmt::arg("sig", sig)));
    EXPECT_FALSE(has(r.output, "exit=0")) << r.output;
    EXPECT_EQ(status_of_run(results), "interrupted") << r.output << slurp(results.string() + ".log");
  };
  stopped(dir_ / "term", "", "TERM");
  stopped(dir_ / "int2", "--nproc 2", "INT");
}

// 11 (continued). A raised --max-trials over a grid too large for memory says so instead of
// "std::bad_alloc" (the address space is capped for the command, so nothing else suffers).
TEST_F(HostilePathsE2E, AGridTooLargeForMemoryIsAClearError) {
  make_data();
  std::string values, epochs;
  for (int i = 0; i < 1000; ++i) {
    values += fmt::format("{}{}", i ? ", " : "", i);
    epochs += fmt::format("{}{}", i ? ", " : "", i + 1);
  }
  std::ofstream(dir_ / "big.toml") << "[experiment]\nname = \"big\"\n[data]\npath = \"data\"\n"
                                      "[[group]]\nname = \"big\"\nmodel = \"ease\"\n[group.grid]\n"
                                      "lambda = [" << values << "]\nepochs = [" << epochs
                                   << "]\npatience = [" << values << "]\n";
  const auto r = run_command(fmt::format("cd {} && ulimit -v 8000000 && timeout 120 {} sweep "
                                         "big.toml --dry-run --max-trials 1000000000",
                                         q(dir_), recrun_bin()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "out of memory")) << r.output;
  EXPECT_TRUE(has(r.output, "--max-trials")) << r.output;
  EXPECT_FALSE(has(r.output, "std::bad_alloc")) << r.output;
}

// 4. Plugin candidates are checked before dlopen: a FIFO named like a plugin no longer hangs
// every command that loads plugins, and a directory, a device or a text file is refused by name.
TEST_F(HostilePathsE2E, PluginCandidatesThatAreNotLibrariesAreRefusedWithoutHanging) {
  const fs::path pd = dir_ / "pd";
  fs::create_directories(pd / "librecrun_dir.so");
  ASSERT_EQ(::mkfifo((pd / "librecrun_x.so").c_str(), 0644), 0);
  ASSERT_EQ(::mknod((pd / "librecrun_dev.so").c_str(), S_IFCHR | 0666, ::makedev(1, 5)), 0);
  std::ofstream(pd / "librecrun_text.so") << "not a library\n";
  // A hang shows as timeout's exit code 124 (no clock: a loaded machine starts recrun slowly).
  const auto r = run_command(fmt::format("cd {} && RECRUN_PLUGIN_PATH={} timeout 300 {} plugins",
                                         q(dir_), q(pd), recrun_bin()));
  EXPECT_NE(r.exit_code, 124) << "hung:\n" << r.output;
  EXPECT_TRUE(has(r.output, "librecrun_x.so: not loaded: it is a FIFO (named pipe)")) << r.output;
  EXPECT_TRUE(has(r.output, "librecrun_dir.so: not loaded: it is a directory")) << r.output;
  EXPECT_TRUE(has(r.output, "librecrun_dev.so: not loaded: it is a character device"))
      << r.output;
  EXPECT_TRUE(has(r.output, "librecrun_text.so: not loaded: not a shared library (no ELF header)"))
      << r.output;
  EXPECT_TRUE(has(r.output, "ease")) << "the real plugins still load:\n" << r.output;
}
