// The Slurm executor's pieces that need no cluster (sweep/slurm.hpp): option checks, the array
// index -> trial mapping, the generated sbatch script (run here with bash, a stand-in recrun and
// the environment Slurm gives an array task), and reading sacct's and scontrol's answers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "recrun/error.hpp"
#include "support/plugins.hpp"
#include "support/process.hpp"
#include "sweep/slurm.hpp"

namespace fs = std::filesystem;
using namespace recrun::sweep;

using recrun::test::read_file;

namespace {

TEST(SlurmOptions, TimeFormats) {
  for (const char* ok : {"30", "0", "90:30", "2:00:00", "1-0", "1-12", "1-12:30", "2-00:00:00",
                         "UNLIMITED", "infinite"})
    EXPECT_TRUE(valid_slurm_time(ok)) << ok;
  for (const char* bad : {"", "1h", "2:00:00:00", "1-", "-1", "1:60", "1:61:00", "abc", "1.5",
                          "1 - 2", "3:"})
    EXPECT_FALSE(valid_slurm_time(bad)) << bad;
}

TEST(SlurmOptions, ErrorsNameTheFlag) {
  const auto message = [](SlurmOptions o, bool limit_given) -> std::string {
    try {
      check_slurm_options(o, limit_given);
    } catch (const recrun::Error& e) {
      return e.what();
    }
    return "";
  };
  SlurmOptions o;
  EXPECT_EQ(message(o, false), "");
  o.time = "2h";
  EXPECT_NE(message(o, false).find("--time '2h'"), std::string::npos);
  o = {};
  o.array_limit = 0;
  EXPECT_NE(message(o, true).find("--array-limit 0"), std::string::npos);
  EXPECT_EQ(message(o, false), "");  // not given: no limit
  o = {};
  o.cpus_per_task = 0;
  EXPECT_NE(message(o, false).find("--cpus-per-task 0"), std::string::npos);
  o = {};
  o.partition = "gpu;rm -rf /";
  EXPECT_NE(message(o, false).find("--partition"), std::string::npos);
  o.partition = "short,long";
  EXPECT_EQ(message(o, false), "");
}

TEST(SlurmArray, TrialsFileMapsIndexToKey) {
  const fs::path dir = recrun::test::temp_dir("slurm_trials");
  const std::vector<std::string> keys = {std::string(32, 'a'), std::string(32, 'b'),
                                         "0123456789abcdef0123456789abcdef"};
  write_trials_file(dir / "sub" / "trials.txt", keys);
  EXPECT_EQ(read_trials_file(dir / "sub" / "trials.txt"), keys);
  EXPECT_EQ(read_file(dir / "sub" / "trials.txt"),
            std::string(32, 'a') + "\n" + std::string(32, 'b') + "\n" + keys[2] + "\n");
  std::ofstream(dir / "bad.txt") << keys[0] << "\nnot-a-key\n";
  try {
    read_trials_file(dir / "bad.txt");
    ADD_FAILURE();
  } catch (const recrun::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
}

TEST(SlurmArray, SubmissionPaths) {
  const SubmissionPaths p{{"res"}, "exp", "20261202T060000Z-7"};
  EXPECT_EQ(p.dir(), fs::path("res/slurm/exp/20261202T060000Z-7"));
  EXPECT_EQ(p.shard("k"), fs::path("res/shards/k.20261202T060000Z-7.db"));
  EXPECT_EQ(SubmissionPaths::merged_dir({"res"}), fs::path("res/shards/merged"));
  EXPECT_EQ(p.status_file(3), fs::path("res/slurm/exp/20261202T060000Z-7/status/3"));
  const std::string id = new_submission_id();
  EXPECT_EQ(id.size(), 16 + 1 + std::to_string(::getpid()).size()) << id;
}

ScriptSpec spec_in(const fs::path& dir, std::size_t tasks) {
  ScriptSpec s;
  s.paths = {{dir / "results"}, "my-exp", "SUB1"};
  s.executable = dir / "fake recrun";  // a space, to check the quoting
  s.workdir = dir;
  s.results_arg = (dir / "results").string();
  s.tasks = tasks;
  s.slurm.partition = "short";
  s.slurm.time = "1:00:00";
  s.slurm.cpus_per_task = 3;
  s.slurm.array_limit = 2;
  s.plugin_dirs = {"/opt/my plugins"};
  s.checkpoint_every_s = 15;
  s.checkpoints = "last";
  return s;
}

TEST(SlurmScript, Directives) {
  const fs::path dir = recrun::test::temp_dir("slurm_script");
  const std::string script = sbatch_script(spec_in(dir, 6));
  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
  for (const std::string& line : std::vector<std::string>{
           "#SBATCH --array=0-5%2\n", "#SBATCH --cpus-per-task=3\n", "#SBATCH --partition=short\n",
        "#SBATCH --time=1:00:00\n", "#SBATCH --job-name=recrun-my-exp\n",
        "#SBATCH --chdir=" + dir.string() + "\n",
        "#SBATCH --output=" + (dir / "results/slurm/my-exp/SUB1").string() + "/slurm-%a.out\n"})
    EXPECT_NE(script.find(line), std::string::npos) << line << "\n" << script;
  ScriptSpec plain = spec_in(dir, 1);
  plain.slurm = {};
  const std::string minimal = sbatch_script(plain);
  EXPECT_NE(minimal.find("#SBATCH --array=0-0\n"), std::string::npos);
  EXPECT_EQ(minimal.find("--partition"), std::string::npos);
  EXPECT_EQ(minimal.find("--time"), std::string::npos);
}

// The script as an array task runs it: it must pick line index + 1 of trials.txt, run recrun
// trial into the shard of that trial with the task's CPUs as threads, append the output to the
// trial's log, and record the exit code.
TEST(SlurmScript, ArrayTaskRunsItsTrial) {
  const fs::path dir = recrun::test::temp_dir("slurm_script_run");
  const ScriptSpec spec = spec_in(dir, 3);
  const std::vector<std::string> keys = {std::string(32, 'a'), std::string(32, 'b'),
                                         std::string(32, 'c')};
  write_trials_file(spec.paths.trials_file(), keys);
  // A stand-in recrun: prints its arguments, one per line, and exits 3 (a recorded failure).
  {
    std::ofstream fake(spec.executable);
    fake << "#!/bin/bash\nfor a in \"$@\"; do echo \"arg:$a\"; done\necho \"omp:$OMP_NUM_THREADS\"\n"
            "exit 3\n";
  }
  fs::permissions(spec.executable, fs::perms::owner_all);
  const fs::path script = dir / "job.sbatch";
  std::ofstream(script) << sbatch_script(spec);
  const auto r = recrun::test::run_command(
      "cd " + recrun::test::shell_quote(dir.string()) +
      " && SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_JOB_ID=77 SLURM_CPUS_PER_TASK=3 bash " +
      recrun::test::shell_quote(script.string()));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  const std::string log = read_file(dir / "results/logs/my-exp" / (keys[1] + ".log"));
  EXPECT_NE(log.find("==== recrun trial " + keys[1] + " attempt started by Slurm job 77_1"),
            std::string::npos)
      << log;
  std::string expected = "arg:trial\narg:" + keys[1] + "\narg:--results\narg:" +
                         spec.results_arg + "\narg:--shard\narg:" +
                         (dir / "results/shards" / (keys[1] + ".SUB1.db")).string() +
                         "\narg:--threads\narg:3\narg:--checkpoint-every\narg:15\n"
                         "arg:--checkpoints\narg:last\narg:--plugin-dir\narg:/opt/my plugins\n"
                         "omp:3\n";
  EXPECT_NE(log.find(expected), std::string::npos) << log;
  EXPECT_EQ(read_file(spec.paths.status_file(1)), "exit 3\n");

  // An index past the end of trials.txt runs nothing.
  const auto past = recrun::test::run_command(
      "cd " + recrun::test::shell_quote(dir.string()) + " && SLURM_ARRAY_TASK_ID=3 bash " +
      recrun::test::shell_quote(script.string()));
  EXPECT_EQ(past.exit_code, 2) << past.output;
  EXPECT_NE(past.output.find("no trial for array index 3"), std::string::npos) << past.output;
}

TEST(SlurmState, ParsesScontrol) {
  const std::string text =
      "JobId=9 ArrayJobId=5 ArrayTaskId=3-5%2 ArrayTaskThrottle=2 JobName=recrun-x "
      "JobState=PENDING Reason=JobArrayTaskLimit Dependency=(null) ExitCode=0:0 RunTime=00:00:00\n"
      "JobId=8 ArrayJobId=5 ArrayTaskId=2 JobState=RUNNING Reason=None ExitCode=0:0\n"
      "JobId=7 ArrayJobId=5 ArrayTaskId=1 JobState=CANCELLED Reason=None ExitCode=0:15\n"
      "JobId=5 ArrayJobId=5 ArrayTaskId=0 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n";
  const auto states = parse_scontrol(text);
  ASSERT_EQ(states.size(), 6u);
  EXPECT_EQ(states.at(4).state, "PENDING");
  EXPECT_FALSE(states.at(5).ended());
  EXPECT_FALSE(states.at(2).ended());
  EXPECT_TRUE(states.at(1).ended());
  EXPECT_EQ(states.at(1).exit_code, "0:15");
  EXPECT_EQ(states.at(0).reason, "TimeLimit");
  EXPECT_EQ(slurm_failure("5", 1, states.at(1)), "Slurm array task 5_1 CANCELLED, exit code 0:15");
  EXPECT_EQ(slurm_failure("5", 0, states.at(0)),
            "Slurm array task 5_0 TIMEOUT (it reached its --time limit), exit code 0:15");
}

TEST(SlurmState, ParsesSacct) {
  const std::string text =
      "12_0|COMPLETED|0:0\n"
      "12_1|CANCELLED by 0|0:15\n"
      "12_2|OUT_OF_MEMORY|0:125\n"
      "12_3|FAILED|3:0\n"
      "12_[4-5%2]|PENDING|0:0\n"
      "13_0|COMPLETED|0:0\n";
  const auto states = parse_sacct(text, "12");
  ASSERT_EQ(states.size(), 6u);
  EXPECT_EQ(states.at(1).state, "CANCELLED");
  EXPECT_EQ(states.at(1).reason, "by 0");
  EXPECT_EQ(slurm_failure("12", 1, states.at(1)),
            "Slurm array task 12_1 CANCELLED (by 0), exit code 0:15");
  EXPECT_EQ(states.at(2).state, "OUT_OF_MEMORY");
  EXPECT_NE(slurm_failure("12", 2, states.at(2)).find("out of memory"), std::string::npos);
  EXPECT_EQ(states.at(3).exit_code, "3:0");
  EXPECT_FALSE(states.at(5).ended());
}

}  // namespace
