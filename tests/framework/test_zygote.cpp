// The trial zygote (sweep/zygote.hpp) against the real `recrun zygote`: a forked worker becomes
// this process's child (the test is the sweep here), runs `recrun trial` with its output in the
// log descriptor it was handed, and its exit code comes back through wait.
#include "sweep/zygote.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/plugins.hpp"

namespace fs = std::filesystem;
using recrun::sweep::ZygoteClient;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ZygoteClient::Options zygote_options(const fs::path& dir) {
  ZygoteClient::Options o;
  o.executable = RECRUN_BIN;
  o.args = {"--plugin-dir", recrun::test::fixture_plugin_dir().string()};
  for (char** e = environ; *e; ++e) o.env.emplace_back(*e);
  o.log = dir / "zygote.log";
  return o;
}

int wait_for(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST(Zygote, ForkedWorkersAreOurChildrenWithTheirOwnLogAndExitCode) {
  ASSERT_TRUE(recrun::sweep::become_subreaper());
  const fs::path dir = recrun::test::temp_dir("zygote");
  ZygoteClient zygote(zygote_options(dir));
  ASSERT_TRUE(zygote.alive());
  EXPECT_EQ(slurp(fs::path("/proc") / std::to_string(zygote.pid()) / "comm"), "recrun-zygote\n");

  for (int i = 0; i < 3; ++i) {
    const fs::path log = dir / ("worker" + std::to_string(i) + ".log");
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int progress[2];
    ASSERT_EQ(::pipe2(progress, O_CLOEXEC), 0);
    // A key that results.db does not hold: the worker's `recrun trial` refuses it (exit 1).
    const std::string results = (dir / ("results" + std::to_string(i))).string();
    const pid_t pid = zygote.spawn({"feedfacefeedfacefeedfacefeedface", "--results", results},
                                   progress[1], log_fd);
    ::close(log_fd);
    ::close(progress[1]);
    ASSERT_GT(pid, 0);
    EXPECT_NE(pid, zygote.pid());
    EXPECT_EQ(::getpgid(pid), pid) << "the worker leads its own process group";
    EXPECT_EQ(wait_for(pid), 1) << slurp(log);
    const std::string text = slurp(log);
    EXPECT_NE(text.find("no trial with key 'feedfacefeedfacefeedfacefeedface'"), std::string::npos)
        << text;
    // The worker closed its end of the progress pipe when it exited: end of file, not a hang.
    char c;
    EXPECT_EQ(::read(progress[0], &c, 1), 0);
    ::close(progress[0]);
  }
  EXPECT_TRUE(zygote.alive());
}

TEST(Zygote, EndsWhenItsClientDoesAndRefusesAfterItDied) {
  ASSERT_TRUE(recrun::sweep::become_subreaper());
  const fs::path dir = recrun::test::temp_dir("zygote-end");
  pid_t zpid = -1;
  {
    ZygoteClient zygote(zygote_options(dir));
    zpid = zygote.pid();
    ASSERT_EQ(::kill(zpid, 0), 0);
  }
  // The destructor closed the socket and reaped it.
  EXPECT_EQ(::kill(zpid, 0), -1);
  EXPECT_EQ(errno, ESRCH);

  ZygoteClient zygote(zygote_options(dir));
  ASSERT_EQ(::kill(zygote.pid(), SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(zygote.pid(), &status, 0), zygote.pid());
  zygote.exited("killed");
  EXPECT_FALSE(zygote.alive());
  EXPECT_THROW(zygote.spawn({"x"}, 0, 1), std::runtime_error);
}

TEST(Zygote, AnExecutableThatIsNoZygoteIsReportedNotWaitedForForever) {
  const fs::path dir = recrun::test::temp_dir("zygote-bad");
  auto o = zygote_options(dir);
  o.executable = "/bin/true";  // exits at once without a word
  try {
    ZygoteClient zygote(o);
    FAIL() << "a zygote that never said ready was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("the zygote exited"), std::string::npos) << e.what();
  }
}

// "ready" is awaited by the zygote's state: one that is slow but busy (here 3 s of CPU before it
// starts, three times the allowed stall) is waited for; one that sleeps is given up after the
// stall, with a reason that says so, instead of after a fixed time whatever the machine's load.
TEST(Zygote, ABusyZygoteIsWaitedForAndAStuckOneIsNot) {
  const fs::path dir = recrun::test::temp_dir("zygote-state");
  const auto script = [&](const std::string& name, const std::string& before) {
    const fs::path p = dir / name;
    std::ofstream(p) << "#!/bin/sh\n" << before << "\nexec " << RECRUN_BIN << " \"$@\"\n";
    fs::permissions(p, fs::perms::owner_all);
    return p;
  };
  auto o = zygote_options(dir);
  o.ready_timeout = std::chrono::milliseconds(1000);
  // Busy in the shell itself (builtins only: a loop that forks `date` spends its CPU in the
  // children, which the zygote's own counters do not see on a loaded machine).
  o.executable = script("busy.sh",
                        "read up rest < /proc/uptime; end=$(( ${up%.*} + 4 ))\n"
                        "while read up rest < /proc/uptime && [ \"${up%.*}\" -lt \"$end\" ]; do :; done");
  {
    ZygoteClient zygote(o);  // throws if it was given up
    EXPECT_TRUE(zygote.alive());
    EXPECT_EQ(slurp(fs::path("/proc") / std::to_string(zygote.pid()) / "comm"), "recrun-zygote\n");
  }
  o.executable = script("stuck.sh", "sleep 30");
  const auto t0 = std::chrono::steady_clock::now();
  try {
    ZygoteClient zygote(o);
    FAIL() << "a zygote that sleeps was waited for";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("used no CPU for 1000 ms"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}
