// core/supervisor: fork, watch, and report how the child ended (see supervisor.hpp).
#include "core/supervisor.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace recrun::core {
namespace {

// The child's write end of the announcement pipe (-1 unless supervised).
int g_announce_fd = -1;
// The parent's child, for the signal handler (kill() is async-signal-safe).
volatile sig_atomic_t g_child = 0;

constexpr std::array<int, 4> kForwarded = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void forward_to_child(int sig) {
  if (g_child > 0) ::kill(static_cast<pid_t>(g_child), sig);
}

int thread_count() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  return 0;  // unknown: do not fork
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return out;
    }
  }
}

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGKILL) return std::string(kKilledByKernel);
    const char* name = ::strsignal(sig);
    return fmt::format("killed by signal {} ({}){}", sig, name ? name : "?",
                       WCOREDUMP(status) ? ", core dumped" : "");
  }
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return fmt::format("ended with wait status {}", status);
}

int ChildEnd::exit_code() const {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::optional<ChildEnd> supervise() {
  if (thread_count() != 1) return std::nullopt;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  const pid_t parent = ::getpid();
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    // Die with the parent (even on kill -9), or the run would go on unwatched.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::close(fds[0]);
    ::fcntl(fds[1], F_SETFL, O_NONBLOCK);  // never wait on the parent
    g_announce_fd = fds[1];
    return std::nullopt;
  }
  ::close(fds[1]);
  g_child = pid;
  struct sigaction sa {};
  sa.sa_handler = forward_to_child;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  std::array<struct sigaction, kForwarded.size()> old{};
  for (std::size_t i = 0; i < kForwarded.size(); ++i) ::sigaction(kForwarded[i], &sa, &old[i]);

  ChildEnd end;
  rusage usage{};
  while (::wait4(pid, &end.status, 0, &usage) < 0 && errno == EINTR) {
  }
  g_child = 0;
  for (std::size_t i = 0; i < kForwarded.size(); ++i) ::sigaction(kForwarded[i], &old[i], nullptr);
  end.peak_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
  // Non-blocking: a grandchild may still hold the write end open.
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string text = read_all(fds[0]);
  ::close(fds[0]);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto nl = text.rfind('\n');
  end.announced = nl == std::string::npos ? text : text.substr(nl + 1);
  return end;
}

void announce(std::string_view line) {
  if (g_announce_fd < 0) return;
  const std::string text = fmt::format("{}\n", line);
  // One write below PIPE_BUF is atomic; a longer announcement is cut.
  const std::size_t n = std::min<std::size_t>(text.size(), PIPE_BUF);
  [[maybe_unused]] const ssize_t written = ::write(g_announce_fd, text.data(), n);
}

}  // namespace recrun::core
