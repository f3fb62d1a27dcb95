#include "distributed/launcher.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "distributed/distributed.hpp"
#include "recrun/error.hpp"

extern char** environ;

namespace recrun::distributed {
namespace {

namespace fs = std::filesystem;

// The ranks, for the signal handler (kill() is async-signal-safe).
constexpr int kMaxRanks = 1024;
volatile sig_atomic_t g_count = 0;
pid_t g_pids[kMaxRanks];

extern "C" void forward_signal(int sig) {
  for (int i = 0; i < g_count; ++i)
    if (g_pids[i] > 0) kill(g_pids[i], sig);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {} ({})", WTERMSIG(status),
                                              strsignal(WTERMSIG(status)));
  return "ended";
}

int code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int launch_ranks(const LaunchOptions& o) {
  if (o.nproc < 2 || o.nproc > kMaxRanks)
    throw ParamError(fmt::format("--nproc {}: must be between 2 and {}", o.nproc, kMaxRanks));
  std::error_code ec;
  fs::create_directories(o.rendezvous_dir, ec);
  if (ec)
    throw Error(fmt::format("cannot create {} for the ranks' rendezvous: {}",
                            o.rendezvous_dir.string(), ec.message()));
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  const fs::path store = o.rendezvous_dir / fmt::format("run-{}-{}", getpid(), stamp);
  fs::remove(store, ec);
  const fs::path exe = fs::read_symlink("/proc/self/exe");

  // Everything the children need is built before fork(): between fork and exec only
  // async-signal-safe calls are allowed (this process may have threads).
  std::vector<std::string> argv_s{exe.string()};
  argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (v.starts_with(std::string(kRankEnv) + "=") ||
        v.starts_with(std::string(kWorldSizeEnv) + "=") ||
        v.starts_with(std::string(kRendezvousEnv) + "="))
      continue;
    base_env.emplace_back(v);
  }
  std::vector<std::vector<std::string>> envs(o.nproc, base_env);
  std::vector<std::vector<char*>> envps(o.nproc);
  for (int r = 0; r < o.nproc; ++r) {
    envs[r].push_back(fmt::format("{}={}", kRankEnv, r));
    envs[r].push_back(fmt::format("{}={}", kWorldSizeEnv, o.nproc));
    envs[r].push_back(fmt::format("{}=file:{}", kRendezvousEnv, store.string()));
    for (auto& e : envs[r]) envps[r].push_back(e.data());
    envps[r].push_back(nullptr);
  }

  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  g_count = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  for (int r = 0; r < o.nproc; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      execve(argv[0], argv.data(), envps[r].data());
      _exit(127);
    }
    if (pid < 0) {
      const int err = errno;
      forward_signal(SIGTERM);
      for (int i = 0; i < g_count; ++i) waitpid(g_pids[i], nullptr, 0);
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      throw Error(fmt::format("--nproc: could not start rank {}: {}", r, std::strerror(err)));
    }
    g_pids[r] = pid;
    g_count = r + 1;
  }

  using Clock = std::chrono::steady_clock;
  std::vector<int> status(o.nproc, 0);
  std::vector<bool> done(o.nproc, false);
  int remaining = o.nproc, first_failed = -1;
  Clock::time_point failed_at{};
  bool terminated = false, killed = false;  // SIGTERM, then SIGKILL, sent to the rest
  while (remaining > 0) {
    int st = 0;
    const pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < o.nproc; ++r)
        if (g_pids[r] == pid && !done[r]) {
          done[r] = true;
          status[r] = st;
          g_pids[r] = -1;
          --remaining;
          if (code_of(st) != 0 && first_failed < 0) {
            first_failed = r;
            failed_at = Clock::now();
          }
        }
      continue;
    }
    if (pid < 0 && errno != EINTR && errno != 0) break;  // no children left
    if (first_failed >= 0) {
      const double waited = std::chrono::duration<double>(Clock::now() - failed_at).count();
      if (!terminated && waited >= o.grace_s) {
        forward_signal(SIGTERM);
        terminated = true;
      } else if (!killed && waited >= o.grace_s + 5) {
        forward_signal(SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  g_count = 0;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  fs::remove(store, ec);

  if (first_failed < 0) return 0;
  // The first failure is the cause; the others followed from it (a peer gone, or terminated).
  fmt::print(stderr, "recrun run: rank {} of {} failed first ({})\n", first_failed, o.nproc,
             describe(status[first_failed]));
  for (int r = 0; r < o.nproc; ++r)
    if (r != first_failed && code_of(status[r]) != 0)
      fmt::print(stderr, "recrun run: rank {} of {} ended after rank {} failed ({})\n", r, o.nproc,
                 first_failed, describe(status[r]));
  return code_of(status[0]) != 0 ? code_of(status[0]) : code_of(status[first_failed]);
}

}  // namespace recrun::distributed
