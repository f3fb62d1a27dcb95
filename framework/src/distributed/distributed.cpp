#include "distributed/distributed.hpp"

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "recrun/error.hpp"

namespace recrun::distributed {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, const std::string& text, int min) {
  std::size_t used = 0;
  long value = -1;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < min || value > 1 << 20)
    throw ParamError(fmt::format("environment variable {}='{}': expected an integer >= {}", name,
                                 text, min));
  return static_cast<int>(value);
}

double timeout_from_env(double fallback) {
  const auto text = env(kTimeoutEnv);
  if (!text) return fallback;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  if (end == text->c_str() || *end != '\0' || !(v > 0) || v > 7 * 24 * 3600.0)
    throw ParamError(fmt::format("environment variable {}='{}': expected seconds > 0",
                                 kTimeoutEnv, *text));
  return v;
}

}  // namespace

std::optional<DistributedConfig> distributed_from_environment(const fs::path& results_dir) {
  DistributedConfig c;
  c.timeout_s = timeout_from_env(c.timeout_s);
  if (const auto world = env(kWorldSizeEnv)) {
    c.world_size = env_int(kWorldSizeEnv, *world, 1);
    const auto rank = env(kRankEnv);
    if (!rank) throw ParamError(fmt::format("{} is set but {} is not", kWorldSizeEnv, kRankEnv));
    c.rank = env_int(kRankEnv, *rank, 0);
    if (c.rank >= c.world_size)
      throw ParamError(fmt::format("{}={} must be below {}={}", kRankEnv, c.rank, kWorldSizeEnv,
                                   c.world_size));
    const auto rv = env(kRendezvousEnv);
    if (!rv) throw ParamError(fmt::format("{} is set but {} is not", kWorldSizeEnv, kRendezvousEnv));
    if (!rv->starts_with("file:") && !rv->starts_with("tcp:"))
      throw ParamError(fmt::format("{}='{}': expected file:PATH or tcp:HOST:PORT", kRendezvousEnv,
                                   *rv));
    c.rendezvous = *rv;
    c.origin = "--nproc";
    if (c.world_size == 1) return std::nullopt;
    return c;
  }
  // srun: one task per rank. SLURM_NTASKS alone is also set inside an sbatch script, where
  // there is one process; SLURM_STEP_ID is set only in a step that srun started.
  const auto procid = env("SLURM_PROCID"), ntasks = env("SLURM_NTASKS"),
             step = env("SLURM_STEP_ID"), job = env("SLURM_JOB_ID");
  if (!procid || !ntasks || !step || !job) return std::nullopt;
  c.world_size = env_int("SLURM_NTASKS", *ntasks, 1);
  if (c.world_size == 1) return std::nullopt;
  c.rank = env_int("SLURM_PROCID", *procid, 0);
  if (c.rank >= c.world_size)
    throw ParamError(fmt::format("SLURM_PROCID={} must be below SLURM_NTASKS={}", c.rank,
                                 c.world_size));
  c.origin = "srun";
  const auto addr = env("MASTER_ADDR"), port = env("MASTER_PORT");
  if (addr && port) {
    env_int("MASTER_PORT", *port, 1);
    c.rendezvous = fmt::format("tcp:{}:{}", *addr, *port);
  } else {
    const fs::path dir = results_dir / ".rendezvous";
    std::error_code ec;
    fs::create_directories(dir, ec);
    c.rendezvous = fmt::format("file:{}", (dir / fmt::format("slurm-{}.{}", *job, *step)).string());
  }
  return c;
}

struct GlooGroup::Impl {
  DistributedConfig config;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  double seconds = 0;
};

std::unique_ptr<GlooGroup> GlooGroup::connect(const DistributedConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(config.timeout_s * 1000));
  const std::string where = fmt::format("rank {} of {} ({})", config.rank, config.world_size,
                                        config.origin);
  std::string hostname = "127.0.0.1";
  try {
    if (config.rendezvous.starts_with("file:")) {
      impl->store = c10::make_intrusive<c10d::FileStore>(config.rendezvous.substr(5),
                                                         config.world_size);
    } else {
      const std::string hp = config.rendezvous.substr(4);
      const auto colon = hp.rfind(':');
      if (colon == std::string::npos)
        throw ParamError(fmt::format("rendezvous '{}': expected tcp:HOST:PORT", config.rendezvous));
      c10d::TCPStoreOptions o;
      o.port = static_cast<std::uint16_t>(std::stoi(hp.substr(colon + 1)));
      o.isServer = config.rank == 0;
      o.numWorkers = config.world_size;
      o.waitWorkers = true;
      o.timeout = timeout;
      impl->store = c10::make_intrusive<c10d::TCPStore>(hp.substr(0, colon), o);
    }
    impl->store->setTimeout(timeout);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    // One machine (--nproc) talks over loopback; ranks on several nodes use the address of
    // this host's name (GLOO_SOCKET_IFNAME picks an interface instead).
    if (config.origin == "--nproc" && !std::getenv("GLOO_SOCKET_IFNAME"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("recrun", impl->store);
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, config.rank,
                                                               config.world_size, options);
  } catch (const recrun::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw Error(fmt::format(
        "data-parallel rendezvous failed for {} at {} within {:.0f} s: {}; every rank must start "
        "(under Slurm: srun -n N recrun run ..., with a results directory all nodes share, or "
        "MASTER_ADDR/MASTER_PORT); {} changes the wait",
        where, config.rendezvous, config.timeout_s, what, kTimeoutEnv));
  }
  return std::unique_ptr<GlooGroup>(new GlooGroup(std::move(impl)));
}

GlooGroup::GlooGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GlooGroup::~GlooGroup() = default;

int GlooGroup::rank() const { return impl_->config.rank; }
int GlooGroup::world_size() const { return impl_->config.world_size; }
double GlooGroup::seconds_in_collectives() const { return impl_->seconds; }

void GlooGroup::all_reduce_sum(torch::Tensor& tensor) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!tensor.is_contiguous()) throw Error("all_reduce_sum: the tensor must be contiguous");
  std::vector<at::Tensor> tensors{tensor};
  try {
    impl_->group->allreduce(tensors)->wait();
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw Error(fmt::format("data-parallel all-reduce failed on rank {} of {}: {} (another rank "
                            "failed or exited; its error is the cause)",
                            impl_->config.rank, impl_->config.world_size, what));
  }
  impl_->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace recrun::distributed
