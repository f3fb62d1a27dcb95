#include "sweep/zygote.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "sweep/scheduler.hpp"

namespace recrun::sweep {

namespace {

constexpr std::size_t kMaxMessage = 64 * 1024;
// The exit code `recrun trial` uses for "not run" (cmd_trial.cpp, scheduler.cpp).
constexpr int kExitNotRun = 4;

std::string errno_text(const char* what) { return fmt::format("{}: {}", what, std::strerror(errno)); }

bool send_text(int fd, const std::string& text) {
  while (true) {
    const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno != EINTR) return false;
  }
}

void close_all(const std::vector<int>& fds) {
  for (const int fd : fds) ::close(fd);
}

// A message header over one buffer and a control buffer for descriptors.
msghdr message(iovec& iov, char* control, std::size_t control_size) {
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = control_size;
  return msg;
}

// One message and the descriptors that came with it. Returns false at end of file or error.
bool receive_request(int fd, std::string& payload, std::vector<int>& fds) {
  payload.assign(kMaxMessage, '\0');
  fds.clear();
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 4)> control{};
  iovec iov{payload.data(), payload.size()};
  msghdr msg = message(iov, control.data(), control.size());
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  payload.resize(static_cast<std::size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (std::size_t i = 0; i < count; ++i) fds.push_back(data[i]);
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) payload.clear();  // refused below
  return true;
}

std::vector<std::string> split_nul(const std::string& payload) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < payload.size()) {
    const auto end = payload.find('\0', start);
    if (end == std::string::npos) {
      out.push_back(payload.substr(start));
      break;
    }
    out.push_back(payload.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// In the forked worker: becomes an ordinary sweep worker and runs the trial. Never returns.
[[noreturn]] void become_worker(pid_t owner, int progress_fd, int log_fd,
                                std::vector<std::string> args,
                                const std::function<int(const std::vector<std::string>&)>& run) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, "recrun-trial");
  // The intermediate exits right after forking us; wait until the sweep (a child subreaper)
  // is our parent, and only then ask to die with it (the death signal follows the parent).
  for (int i = 0; ::getppid() != owner && i < 5000; ++i) ::usleep(1000);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != owner) ::_exit(kExitNotRun);
  for (const int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) ::dup2(null_fd, 0);
  ::dup2(log_fd, 1);
  ::dup2(log_fd, 2);
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  ::fcntl(progress_fd, F_SETFD, 0);
  args.push_back("--progress-fd");
  args.push_back(std::to_string(progress_fd));
  int code = 1;
  try {
    code = run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recrun trial: error: %s\n", e.what());
  }
  // As an exec'd worker's main() does: flush and end without static destructors.
  std::fflush(nullptr);
  ::_exit(code);
}

}  // namespace

int thread_count() {
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

bool become_subreaper() { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }

ZygoteClient::ZygoteClient(const Options& options) : log_(options.log) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error(errno_text("socketpair"));
  std::error_code ec;
  std::filesystem::create_directories(options.log.parent_path(), ec);
  const int log_fd = ::open(options.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> args = {options.executable.string(), "zygote", "--control-fd", "3",
                                   "--owner-pid", std::to_string(::getpid())};
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = options.env;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const int child_end = sv[1];

  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until execve.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(kExitNotRun);
    ::setpgid(0, 0);  // a terminal's Ctrl-C is the sweep's to handle
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    if (child_end == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else {
      ::dup2(child_end, 3);  // dup2 clears close-on-exec on the copy
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(sv[1]);
  if (log_fd >= 0) ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) {
    ::close(sv[0]);
    throw std::runtime_error(errno_text("fork"));
  }
  pid_ = pid;
  socket_ = sv[0];
  alive_ = true;
  const std::string hello = await_ready(options.ready_timeout, options.ready_limit);
  if (hello != "ready") {
    // No destructor runs for a constructor that throws: stop and reap it here.
    alive_ = false;
    ::close(socket_);
    socket_ = -1;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string tail = log_tail(log_);
    throw std::runtime_error(fmt::format("{}{}", hello.starts_with("error ") ? hello.substr(6) : hello,
                                         tail.empty() ? "" : fmt::format("; log: {}", tail)));
  }
}

ZygoteClient::~ZygoteClient() {
  if (socket_ >= 0) ::close(socket_);
  if (pid_ <= 0 || !exit_reason_.empty()) return;  // never started, or already reaped
  // End of file makes it exit; give it a moment, then make sure.
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) return;
    ::usleep(10000);
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

void ZygoteClient::exited(const std::string& how) {
  alive_ = false;
  exit_reason_ = how.empty() ? "exited" : how;
}

namespace {

// The CPU time (user + system, clock ticks) a process has used, from /proc/PID/stat; nothing
// when it is gone or a zombie.
std::optional<long long> cpu_ticks(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string state;
  fields >> state;
  if (state == "Z" || state == "X") return std::nullopt;
  std::string skip;
  for (int i = 0; i < 10; ++i) fields >> skip;  // ppid .. cmajflt (fields 4 to 13)
  long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return utime + stime;
}

}  // namespace

std::string ZygoteClient::await_ready(std::chrono::milliseconds stall,
                                      std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto last_progress = start;
  auto last_cpu = cpu_ticks(pid_);
  const auto slice = std::chrono::milliseconds(
      std::max<std::int64_t>(1, std::min<std::int64_t>(200, stall.count())));
  for (;;) {
    pollfd p{socket_, POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(slice.count()));
    } while (r < 0 && errno == EINTR);
    if (r != 0) return receive(std::chrono::milliseconds(0));  // a message, or its end
    const auto now = Clock::now();
    const auto cpu = cpu_ticks(pid_);
    if (!cpu) return "the zygote exited";
    if (cpu != last_cpu) {
      last_cpu = cpu;
      last_progress = now;
    } else if (now - last_progress >= stall) {
      return fmt::format("the zygote used no CPU for {} ms without saying ready", stall.count());
    }
    if (now - start >= limit)
      return fmt::format("no answer from the zygote in {} ms, though it was busy", limit.count());
  }
}

std::string ZygoteClient::receive(std::chrono::milliseconds timeout) {
  pollfd p{socket_, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return fmt::format("no answer from the zygote in {} ms", timeout.count());
  if (r < 0) return errno_text("poll");
  std::string buf(kMaxMessage, '\0');
  ssize_t n;
  do {
    n = ::recv(socket_, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_text("recv");
  if (n == 0) return "the zygote exited";
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

pid_t ZygoteClient::spawn(const std::vector<std::string>& trial_args, int progress_fd, int log_fd) {
  if (!alive_)
    throw std::runtime_error(exit_reason_.empty() ? "the zygote is not running" : exit_reason_);
  std::string payload;
  for (std::size_t i = 0; i < trial_args.size(); ++i) {
    if (i) payload.push_back('\0');
    payload += trial_args[i];
  }
  if (payload.size() >= kMaxMessage) throw std::runtime_error("trial arguments too long for the zygote");
  const std::array<int, 2> fds = {progress_fd, log_fd};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof fds)> control{};
  iovec iov{payload.data(), payload.size()};
  msghdr msg = message(iov, control.data(), control.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof fds);
  ssize_t n;
  do {
    n = ::sendmsg(socket_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    alive_ = false;
    throw std::runtime_error(errno_text("sending to the zygote"));
  }
  const std::string reply = receive(std::chrono::milliseconds(30000));
  if (reply.starts_with("pid ")) {
    try {
      const long v = std::stol(reply.substr(4));
      if (v > 0) return static_cast<pid_t>(v);
    } catch (const std::exception&) {
    }
  }
  // Whatever went wrong, do not trust it with the next trial.
  alive_ = false;
  throw std::runtime_error(reply.starts_with("error ") ? reply.substr(6) : reply);
}

int serve_zygote(int control_fd, pid_t owner,
                 const std::function<int(const std::vector<std::string>&)>& run_trial) {
  ::signal(SIGPIPE, SIG_IGN);
  ::prctl(PR_SET_NAME, "recrun-zygote");
  if (const int n = thread_count(); n != 1) {
    send_text(control_fd, fmt::format("error the zygote has {} threads after loading the plugins; "
                                      "it can only fork with one",
                                      n));
    return 1;
  }
  if (!send_text(control_fd, "ready")) return 1;
  std::string payload;
  std::vector<int> fds;
  while (receive_request(control_fd, payload, fds)) {
    if (fds.size() != 2 || payload.empty()) {
      close_all(fds);
      send_text(control_fd, fmt::format("error malformed request ({} descriptors, {} bytes)",
                                        fds.size(), payload.size()));
      continue;
    }
    if (const int n = thread_count(); n != 1) {
      close_all(fds);
      send_text(control_fd, fmt::format("error the zygote has {} threads; it can only fork with one", n));
      continue;
    }
    const std::vector<std::string> args = split_nul(payload);
    int pid_pipe[2];
    if (::pipe2(pid_pipe, O_CLOEXEC) != 0) {
      close_all(fds);
      send_text(control_fd, "error " + errno_text("pipe2"));
      continue;
    }
    std::fflush(nullptr);
    const pid_t middle = ::fork();
    if (middle == 0) {
      ::close(control_fd);
      ::close(pid_pipe[0]);
      const pid_t worker = ::fork();
      if (worker == 0) {
        ::close(pid_pipe[1]);
        become_worker(owner, fds[0], fds[1], args, run_trial);
      }
      // The group exists before the sweep learns the pid, so that kill(-pid) always reaches it.
      if (worker > 0) ::setpgid(worker, worker);
      const pid_t sent = worker;
      [[maybe_unused]] const auto w = ::write(pid_pipe[1], &sent, sizeof sent);
      ::_exit(worker > 0 ? 0 : 1);
    }
    ::close(pid_pipe[1]);
    close_all(fds);
    pid_t worker = -1;
    std::string why;
    if (middle < 0) {
      why = errno_text("fork");
    } else {
      ssize_t n;
      do {
        n = ::read(pid_pipe[0], &worker, sizeof worker);
      } while (n < 0 && errno == EINTR);
      if (n != static_cast<ssize_t>(sizeof worker)) worker = -1;
      int status = 0;
      while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
      }
      if (worker <= 0) why = "fork of the worker failed";
    }
    ::close(pid_pipe[0]);
    send_text(control_fd, worker > 0 ? fmt::format("pid {}", worker) : "error " + why);
  }
  return 0;
}

}  // namespace recrun::sweep
