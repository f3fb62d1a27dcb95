#include "sweep/scheduler.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/memory_check.hpp"
#include "core/supervisor.hpp"
#include "trial/recorder.hpp"
#include "sweep/zygote.hpp"

namespace recrun::sweep {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Exit codes of `recrun trial` (cmd_trial.cpp): the parent tells a recorded failure from a
// crash by them.
constexpr int kExitFinished = 0;
constexpr int kExitFailedRecorded = 3;
constexpr int kExitNotRun = 4;

// SIGKILL that the sweep did not send (its own kills carry a kill_reason) reads as the kernel's.
std::string describe_wait_status(int status) { return core::describe_wait_status(status); }

std::string log_tail(const fs::path& log, std::size_t max_lines) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  const std::streamoff start = std::max<std::streamoff>(0, size - 4096);
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::istringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && !line.starts_with("==== ")) lines.push_back(line);
  }
  if (lines.size() > max_lines) lines.erase(lines.begin(), lines.end() - static_cast<long>(max_lines));
  return fmt::format("{}", fmt::join(lines, " | "));
}

namespace {

// Self-pipe: the handler only writes the signal number; the loop does the rest.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const auto n = ::write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

class SignalGuard {
 public:
  SignalGuard() {
    if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::runtime_error(fmt::format("pipe2: {}", std::strerror(errno)));
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    // SIGCHLD too: a worker's exit wakes the loop at once instead of at its next poll timeout.
    sa.sa_flags = SA_RESTART;
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      sa.sa_flags = kSignals[i] == SIGCHLD ? SA_RESTART | SA_NOCLDSTOP : SA_RESTART;
      ::sigaction(kSignals[i], &sa, &old_[i]);
    }
  }
  ~SignalGuard() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);
    g_signal_pipe[0] = g_signal_pipe[1] = -1;
  }
  int fd() const { return g_signal_pipe[0]; }
  static constexpr std::array<int, 4> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};

 private:
  std::array<struct sigaction, 4> old_{};
};

struct Worker {
  const Trial* trial = nullptr;
  int slot = 0;
  pid_t pid = -1;
  int progress_fd = -1;
  std::string buffer;
  Clock::time_point start;
  std::optional<std::string> kill_reason;  // set when we killed it for a limit
  bool stop_requested = false;
  bool resumed = false;
  std::int64_t last_epoch = -1;  // last epoch the worker reported finishing
  fs::path log;
  double peak_rss_mib = 0;  // ru_maxrss once reaped
};

double resident_mib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/statm", pid));
  long long size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

class Scheduler {
 public:
  Scheduler(results::ResultsStore& store, const SchedulerOptions& options,
            ProgressDisplay& display)
      : store_(store), options_(options), display_(display),
        free_slots_(static_cast<std::size_t>(options.jobs), true), env_(worker_environment()) {}

  ScheduleResult run(const std::vector<const Trial*>& queue) {
    SignalGuard signals;
    if (options_.zygote && (!queue.empty() || options_.more)) start_zygote();
    std::vector<const Trial*> queued(queue.begin(), queue.end());
    bool more = static_cast<bool>(options_.more);
    auto last_heartbeat = Clock::now();
    while (true) {
      while (result_.stopped_by == 0 && workers_.size() < static_cast<std::size_t>(options_.jobs)) {
        if (const Trial* t = next_ready(queued)) {
          launch(*t);
        } else if (const Trial* s = more ? options_.more() : nullptr) {
          launch(*s);
        } else {
          more = false;
          break;
        }
      }
      if (workers_.empty()) {
        // Nothing runs, so trials still not ready can never become so (their members' trials
        // wait in turn): they wait for the next sweep.
        if (result_.stopped_by == 0)
          for (const Trial* t : queued)
            record_waiting(*t, "the trials that make its members did not end in this sweep "
                               "(they wait for members in turn)");
        break;
      }
      wait_for_events(signals.fd());
      reap();
      police();
      if (Clock::now() - last_heartbeat >= options_.heartbeat_every) {
        heartbeat();
        last_heartbeat = Clock::now();
      }
      display_.tick();
    }
    return std::move(result_);
  }

 private:
  int take_slot() {
    for (std::size_t i = 0; i < free_slots_.size(); ++i)
      if (free_slots_[i]) {
        free_slots_[i] = false;
        return static_cast<int>(i);
      }
    return 0;
  }

  // Takes the first queued trial that may start now out of `queued`; trials found waiting are
  // recorded and dropped, those not ready yet stay.
  const Trial* next_ready(std::vector<const Trial*>& queued) {
    for (auto it = queued.begin(); it != queued.end();) {
      const Trial* t = *it;
      const Readiness r = options_.readiness ? options_.readiness(*t) : Readiness{};
      if (r.kind == Readiness::Kind::later) {
        ++it;
        continue;
      }
      it = queued.erase(it);
      if (r.kind == Readiness::Kind::ready) return t;
      record_waiting(*t, r.reason);
    }
    return nullptr;
  }

  void record_waiting(const Trial& trial, const std::string& reason) {
    if (store_.fail(trial.key, reason, results::RunStatus::waiting)) {
      result_.runs.push_back({trial.key, "waiting", reason, 0});
      display_.log(fmt::format("{} {} waits for its members: {}", trial.key.substr(0, 8),
                               trial.label(), reason));
    } else {
      result_.runs.push_back({trial.key, "skipped", "taken by another sweep", 0});
    }
  }

  void launch(const Trial& trial) {
    const auto before = store_.find(trial.key);
    const results::ClaimResult claim = store_.claim(trial.key, options_.retry_failed);
    if (claim != results::ClaimResult::claimed) {
      const std::string why =
          claim == results::ClaimResult::already_finished       ? "already finished"
          : claim == results::ClaimResult::owned_by_live_worker ? "running in another sweep"
                                                                : "failed earlier (--retry-failed reruns it)";
      result_.runs.push_back({trial.key, "skipped", why, 0});
      return;
    }
    const fs::path ckpt = options_.layout.checkpoints(options_.experiment, trial.key);
    // A retried failure starts over: resuming a run that diverged would diverge again.
    if (before && before->status == results::RunStatus::failed) {
      std::error_code ec;
      fs::remove_all(ckpt, ec);
    }
    const bool resuming = fs::exists(ckpt / "last.ckpt");

    Worker w;
    w.trial = &trial;
    w.slot = take_slot();
    w.log = options_.layout.log(options_.experiment, trial.key);
    fs::create_directories(w.log.parent_path());

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      fail_unlaunched(trial, w.slot, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
      return;
    }
    const int log_fd = ::open(w.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    {
      const std::string banner =
          fmt::format("==== recrun trial {} ({} {}) attempt started by sweep pid {}\n", trial.key,
                      trial.group, trial.label(), ::getpid());
      if (log_fd >= 0) {
        [[maybe_unused]] const auto n = ::write(log_fd, banner.data(), banner.size());
      }
    }

    std::vector<std::string> trial_args = {trial.key,
                                           "--results", options_.layout.root.string(),
                                           "--threads", std::to_string(options_.threads_per_worker),
                                           "--owner-pid", std::to_string(::getpid()),
                                           "--checkpoint-every", fmt::format("{}", options_.checkpoint_every_s),
                                           "--checkpoints", options_.checkpoints};
    for (const auto& d : options_.plugin_dirs) {
      trial_args.push_back("--plugin-dir");
      trial_args.push_back(d);
    }
    pid_t pid = -1;
    if (zygote_ && zygote_->alive()) {
      try {
        pid = zygote_->spawn(trial_args, pipe_fds[1], log_fd);
      } catch (const std::exception& e) {
        display_.log(fmt::format("sweep: the trial zygote failed ({}); starting workers with exec "
                                 "from now on",
                                 e.what()));
      }
    }
    if (pid <= 0) pid = exec_worker(trial_args, pipe_fds[1], log_fd, null_fd);
    ::close(pipe_fds[1]);
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    if (pid < 0) {
      ::close(pipe_fds[0]);
      fail_unlaunched(trial, w.slot, fmt::format("cannot start a worker: {}", std::strerror(errno)));
      return;
    }
    ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    w.pid = pid;
    w.resumed = resuming;
    w.progress_fd = pipe_fds[0];
    w.start = Clock::now();
    display_.started(w.slot, trial.key, fmt::format("{} {}", trial.group, trial.label()), resuming,
                     trial.model);
    workers_.push_back(std::move(w));
  }

  // BLAS and OpenMP pools size themselves from the environment, before LibTorch's
  // set_num_threads runs: give each worker its share, or N workers would each use every core.
  std::vector<std::string> worker_environment() const {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string_view v(*e);
      if (v.starts_with("OMP_NUM_THREADS=") || v.starts_with("OPENBLAS_NUM_THREADS=") ||
          v.starts_with("MKL_NUM_THREADS=") ||
          v.starts_with(std::string(core::kMemoryLimitEnv) + "="))
        continue;
      env.emplace_back(v);
    }
    for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"})
      env.push_back(fmt::format("{}={}", name, options_.threads_per_worker));
    // A worker refuses a trial whose estimated peak exceeds the limit before training it.
    if (options_.memory_limit_mb > 0)
      env.push_back(fmt::format("{}={}", core::kMemoryLimitEnv, options_.memory_limit_mb));
    return env;
  }

  void start_zygote() {
    // Workers the zygote forks must become our children, to be waited for and timed.
    if (!become_subreaper()) {
      display_.log(fmt::format("sweep: cannot become a child subreaper ({}); starting workers "
                               "with exec",
                               std::strerror(errno)));
      return;
    }
    ZygoteClient::Options zo;
    zo.executable = options_.executable;
    // Its command line (which its workers share) names the results directory like exec'd ones.
    zo.args = {"--results", options_.layout.root.string()};
    for (const auto& d : options_.plugin_dirs) {
      zo.args.push_back("--plugin-dir");
      zo.args.push_back(d);
    }
    zo.env = env_;
    zo.log = options_.layout.root / "logs" / options_.experiment / "zygote.log";
    try {
      zygote_ = std::make_unique<ZygoteClient>(zo);
    } catch (const std::exception& e) {
      display_.log(fmt::format("sweep: the trial zygote did not start ({}); starting workers with "
                               "exec",
                               e.what()));
    }
  }

  // fork + exec `recrun trial ARGS --progress-fd FD`. Returns the pid, or -1 with errno.
  pid_t exec_worker(const std::vector<std::string>& trial_args, int progress_w, int log_fd,
                    int null_fd) {
    // Everything the child needs is prepared before fork(): after it, only async-signal-safe
    // calls until execve (the parent may have LibTorch threads running).
    std::vector<std::string> args = {options_.executable.string(), "trial"};
    args.insert(args.end(), trial_args.begin(), trial_args.end());
    args.push_back("--progress-fd");
    args.push_back(std::to_string(progress_w));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Die with the sweep, even on kill -9: an orphaned worker would hold its trial forever.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(kExitNotRun);
      // Own process group: a terminal's Ctrl-C reaches the sweep, which stops workers in order.
      ::setpgid(0, 0);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::fcntl(progress_w, F_SETFD, 0);  // the one descriptor the worker inherits
      if (null_fd >= 0) ::dup2(null_fd, 0);
      if (log_fd >= 0) {
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    if (pid > 0) ::setpgid(pid, pid);  // also here, so the group exists whichever runs first
    return pid;
  }

  void fail_unlaunched(const Trial& trial, int slot, const std::string& why) {
    free_slots_[static_cast<std::size_t>(slot)] = true;
    store_.fail(trial.key, why);
    result_.runs.push_back({trial.key, "failed", why, 0});
  }

  void wait_for_events(int signal_fd) {
    std::vector<pollfd> fds;
    fds.push_back({signal_fd, POLLIN, 0});
    for (const auto& w : workers_)
      if (w.progress_fd >= 0) fds.push_back({w.progress_fd, POLLIN, 0});
    // Short timeout: exits are noticed by polling waitpid, limits by reading /proc.
    const int n = ::poll(fds.data(), fds.size(), 100);
    if (n <= 0) return;
    if (fds[0].revents & POLLIN) {
      unsigned char sig = 0;
      while (::read(signal_fd, &sig, 1) == 1)
        if (sig != SIGCHLD) on_signal(sig);  // an exit: reap() follows
    }
    for (auto& w : workers_) drain(w);
  }

  void drain(Worker& w) {
    if (w.progress_fd < 0) return;
    char buf[4096];
    while (true) {
      const ssize_t n = ::read(w.progress_fd, buf, sizeof buf);
      if (n > 0) {
        w.buffer.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {  // the worker closed its end (it exited)
        ::close(w.progress_fd);
        w.progress_fd = -1;
      }
      break;
    }
    std::size_t nl;
    while ((nl = w.buffer.find('\n')) != std::string::npos) {
      const std::string line = w.buffer.substr(0, nl);
      w.buffer.erase(0, nl + 1);
      if (auto e = trial::parse_progress(line)) {
        if (e->kind == trial::ProgressKind::epoch || e->kind == trial::ProgressKind::resumed)
          w.last_epoch = e->epoch;
        display_.event(w.slot, *e);
      }
    }
  }

  void on_signal(int sig) {
    if (result_.stopped_by == 0) {
      result_.stopped_by = sig;
      display_.log(fmt::format(
          "sweep: {} received: stopping {} worker(s); their trials resume from their last "
          "checkpoint next time (send it again to kill them at once)",
          ::strsignal(sig), workers_.size()));
      stop_deadline_ = Clock::now() + std::chrono::seconds(5);
      for (auto& w : workers_) {
        w.stop_requested = true;
        ::kill(-w.pid, SIGTERM);
      }
    } else {
      for (auto& w : workers_) ::kill(-w.pid, SIGKILL);
    }
  }

  void police() {
    const auto now = Clock::now();
    for (auto& w : workers_) {
      if (w.kill_reason || w.stop_requested) continue;
      const double elapsed = std::chrono::duration<double>(now - w.start).count();
      if (options_.trial_timeout_s > 0 && elapsed > options_.trial_timeout_s) {
        w.kill_reason = fmt::format("exceeded the time limit of {} s (execution.trial_timeout)",
                                    options_.trial_timeout_s);
      } else if (options_.memory_limit_mb > 0) {
        const double rss = resident_mib(w.pid);
        if (rss > options_.memory_limit_mb)
          w.kill_reason = fmt::format("exceeded the memory limit: {:.0f} MiB resident > {} MiB "
                                      "(execution.memory_limit_mb)",
                                      rss, options_.memory_limit_mb);
      }
      if (w.kill_reason) ::kill(-w.pid, SIGKILL);
    }
    if (result_.stopped_by != 0 && now > stop_deadline_) {
      for (auto& w : workers_) ::kill(-w.pid, SIGKILL);
      stop_deadline_ = Clock::time_point::max();
    }
  }

  void heartbeat() {
    for (auto& w : workers_) {
      if (store_.heartbeat(w.trial->key) || w.kill_reason || w.stop_requested) continue;
      // Not running under us any more. A worker that just recorded its outcome is fine; a row
      // that someone else took over means stopping, or the trial would run twice.
      const auto row = store_.find(w.trial->key);
      const bool taken = row && (row->status == results::RunStatus::interrupted ||
                                 (row->status == results::RunStatus::running &&
                                  row->owner_pid != store_.options().owner.pid));
      if (taken) {
        w.stop_requested = true;
        display_.log(fmt::format("sweep: trial {} was taken over by another process; stopping "
                                 "its worker here",
                                 w.trial->key));
        ::kill(-w.pid, SIGKILL);
      }
    }
  }

  void reap() {
    for (auto it = workers_.begin(); it != workers_.end();) {
      int status = 0;
      rusage usage{};
      const pid_t r = ::wait4(it->pid, &status, WNOHANG, &usage);
      if (r == 0) {
        ++it;
        continue;
      }
      drain(*it);
      if (it->progress_fd >= 0) ::close(it->progress_fd);
      const auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
      it->peak_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
      finish(*it, r == it->pid ? status : -1, secs(usage.ru_utime) + secs(usage.ru_stime));
      free_slots_[static_cast<std::size_t>(it->slot)] = true;
      it = workers_.erase(it);
    }
    reap_others();
  }

  // The zygote, and any orphan re-parented to us as a child subreaper (a plugin's own child
  // whose worker died): neither is a worker, and neither may stay a zombie.
  void reap_others() {
    if (zygote_ && !zygote_->reaped()) {
      int status = 0;
      if (::waitpid(zygote_->pid(), &status, WNOHANG) == zygote_->pid()) {
        zygote_->exited(fmt::format("the zygote {}", describe_wait_status(status)));
        display_.log(fmt::format("sweep: the trial zygote {}; starting workers with exec from "
                                 "now on",
                                 describe_wait_status(status)));
      }
    }
    while (true) {
      siginfo_t info{};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
      const pid_t pid = info.si_pid;
      const bool ours = std::any_of(workers_.begin(), workers_.end(),
                                    [pid](const Worker& w) { return w.pid == pid; }) ||
                        (zygote_ && !zygote_->reaped() && zygote_->pid() == pid);
      if (ours) return;  // reaped by its owner on the next round
      int status = 0;
      ::waitpid(pid, &status, WNOHANG);
    }
  }

  std::string metric_detail(const results::RunRow& row) const {
    const std::string& monitor = protocol_monitor(row);
    std::string out;
    for (const auto& m : row.valid_metrics)
      if (m.name == monitor) out += fmt::format("valid {} {:.4f}", m.name, m.value);
    for (const auto& m : row.test_metrics)
      if (m.name == monitor) out += fmt::format("  test {:.4f}", m.value);
    return out;
  }

  static std::string protocol_monitor(const results::RunRow& row) {
    try {
      return trial::Protocol::from_json(row.protocol_json).monitor;
    } catch (const std::exception&) {
      return "NDCG@10";
    }
  }

  void finish(Worker& w, int status, double cpu_seconds) {
    const double seconds = std::chrono::duration<double>(Clock::now() - w.start).count();
    const std::string& key = w.trial->key;
    const auto row = store_.find(key);
    const bool exited = status >= 0 && WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : -1;
    std::string outcome, detail;
    if (row && (row->status == results::RunStatus::finished ||
                row->status == results::RunStatus::pruned)) {
      outcome = std::string(results::to_string(row->status));
      detail = metric_detail(*row);
    } else if (row && row->status == results::RunStatus::failed) {
      // The worker recorded why (claim() cleared any earlier attempt's error).
      outcome = "failed";
      detail = row->error;
      if (code != kExitFailedRecorded)
        detail += fmt::format(" (then the worker {})", describe_wait_status(status));
    } else if (w.kill_reason) {
      outcome = "failed";
      detail = *w.kill_reason;
      store_.fail(key, detail);
    } else if (w.stop_requested) {
      outcome = "interrupted";
      detail = result_.stopped_by ? fmt::format("sweep stopped by {}", ::strsignal(result_.stopped_by))
                                  : "taken over by another process";
      store_.mark_interrupted(key, detail);
    } else {
      // A crash: the worker could not record anything itself.
      outcome = "failed";
      detail = fmt::format("worker {}", status >= 0 ? describe_wait_status(status) : "vanished");
      if (status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        detail += fmt::format(" at {:.0f} MiB peak resident", w.peak_rss_mib);
      detail += w.last_epoch >= 0 ? fmt::format(" after epoch {} completed", w.last_epoch)
                                  : std::string(" before completing an epoch");
      if (code == kExitNotRun) detail = "worker refused the trial";
      const std::string tail = log_tail(w.log);
      if (!tail.empty()) detail += fmt::format("; log: {}", tail);
      detail += fmt::format(" (full log: {})", w.log.string());
      store_.fail(key, detail);
    }
    display_.ended(w.slot, outcome, first_line(detail), seconds);
    result_.runs.push_back({key, outcome, detail, seconds, w.resumed, cpu_seconds});
  }

  static std::string first_line(const std::string& s) {
    const auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl) + " ...";
  }

  results::ResultsStore& store_;
  const SchedulerOptions& options_;
  ProgressDisplay& display_;
  std::vector<bool> free_slots_;
  std::vector<Worker> workers_;
  ScheduleResult result_;
  Clock::time_point stop_deadline_ = Clock::time_point::max();
  std::vector<std::string> env_;
  std::unique_ptr<ZygoteClient> zygote_;
};

}  // namespace

ScheduleResult run_trials(results::ResultsStore& store, const std::vector<const Trial*>& queue,
                          const SchedulerOptions& options, ProgressDisplay& display) {
  return Scheduler(store, options, display).run(queue);
}

}  // namespace recrun::sweep
