#include "sweep/members.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <system_error>

#include "recrun/error.hpp"
#include "recrun/member_ref.hpp"
#include "trial/key.hpp"
#include "trial/members.hpp"

namespace recrun::sweep {

namespace fs = std::filesystem;

std::optional<fs::path> experiment_file_named(const fs::path& file, const std::string& name) {
  std::error_code ec;
  std::vector<fs::path> candidates;
  const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".toml" && entry.is_regular_file(ec))
      candidates.push_back(entry.path());
  std::sort(candidates.begin(), candidates.end());
  for (const auto& p : candidates) {
    if (fs::file_size(p, ec) > (1u << 20)) continue;  // experiment files are small
    try {
      const toml::table t = toml::parse_file(p.string());
      if (t["experiment"]["name"].value_or(std::string()) == name) return p;
    } catch (const std::exception&) {
      // Not an experiment file, or a broken one: not the producer.
    }
  }
  return std::nullopt;
}

std::vector<std::string> member_refs(const Trial& t, const Registry& registry) {
  std::vector<std::string> out;
  for (const auto& spec : trial::full_schema(registry.model(t.model))) {
    if (!spec.refers_to || !spec.refers_to->member_refs || !t.params.contains(spec.name)) continue;
    if (spec.type != ParamType::string_list) continue;
    for (const auto& ref : t.params.get_list(spec.name))
      // An inline member (train:) is trained by the trial itself: nothing to find.
      if (!ref.starts_with("train:") && std::find(out.begin(), out.end(), ref) == out.end())
        out.push_back(ref);
  }
  return out;
}

namespace {

// Where the run `ref` names comes from.
std::pair<std::string, bool> producer(const MemberRef& ref, const Experiment& x) {
  if (ref.kind == MemberRef::Kind::run)
    return {"the run with this key (`recrun results list` lists the keys)", false};
  if (ref.experiment.empty())
    return {fmt::format("any finished {} run (e.g. `recrun run --model {}` on the same data)",
                        ref.model, ref.model),
            false};
  if (ref.experiment == x.name)
    return {fmt::format("the {} trials of this experiment{}", ref.model,
                        ref.group.empty() ? "" : fmt::format(" (group {})", ref.group)),
            true};
  if (const auto file = experiment_file_named(x.file, ref.experiment)) {
    std::error_code ec;
    auto shown = fs::relative(*file, fs::current_path(), ec);
    if (ec || shown.empty() || shown.string().starts_with("..")) shown = *file;
    return {fmt::format("experiment '{}' in {}: `recrun sweep {} --only {}`", ref.experiment,
                        shown.string(), shown.string(), ref.group.empty() ? ref.model : ref.group),
            false};
  }
  return {fmt::format("experiment '{}', which no .toml file beside {} names", ref.experiment,
                      x.file.filename().string()),
          false};
}

}  // namespace

std::vector<MemberCheck> check_members(const std::vector<Trial>& trials, const Experiment& x,
                                       const Registry& registry,
                                       const results::ResultsStore* store) {
  std::vector<MemberCheck> out;
  std::map<std::string, std::size_t> index;
  for (const auto& t : trials) {
    for (const auto& ref : member_refs(t, registry)) {
      auto [it, inserted] = index.emplace(ref, out.size());
      if (inserted) {
        MemberCheck c;
        c.ref = ref;
        out.push_back(std::move(c));
      }
      auto& groups = out[it->second].groups;
      if (std::find(groups.begin(), groups.end(), t.group) == groups.end())
        groups.push_back(t.group);
    }
  }
  for (auto& c : out) {
    MemberRef parsed;
    try {
      parsed = parse_member_ref(c.ref);
    } catch (const std::exception& e) {
      c.problem = e.what();
      continue;
    }
    std::tie(c.produced_by, c.from_this_experiment) = producer(parsed, x);
    if (!store) {
      c.problem = "there is no results.db yet";
      continue;
    }
    try {
      c.run = trial::resolve_run_ref(*store, c.ref, x.protocol.monitor);
    } catch (const std::exception& e) {
      c.problem = e.what();
    }
  }
  return out;
}

std::vector<Dependency> plan_dependencies(const std::vector<Trial>& trials, const Experiment& x,
                                          const Registry& registry,
                                          const std::vector<std::string>& chain) {
  std::vector<Dependency> out;
  for (const auto& name : x.depends) {
    if (name == x.name)
      throw ExperimentError(x.depends_origin,
                            fmt::format("experiment.depends: '{}' is this experiment itself; its "
                                        "own groups that make members run first anyway",
                                        name));
    if (std::find(chain.begin(), chain.end(), name) != chain.end())
      throw ExperimentError(
          x.depends_origin,
          fmt::format("experiment.depends: '{}' is already running its dependencies ({} -> {}): "
                      "experiments that depend on each other never finish",
                      name, fmt::join(chain, " -> "), x.name));
    const auto file = experiment_file_named(x.file, name);
    if (!file)
      throw ExperimentError(
          x.depends_origin,
          fmt::format("experiment.depends: no .toml file in {} has [experiment] name = \"{}\"",
                      x.file.parent_path().empty() ? std::string(".")
                                                   : x.file.parent_path().string(),
                      name));
    out.push_back(Dependency{name, *file, {}});
  }
  for (const auto& t : trials) {
    for (const auto& ref : member_refs(t, registry)) {
      MemberRef parsed;
      try {
        parsed = parse_member_ref(ref);
      } catch (const std::exception&) {
        continue;  // the trial reports it
      }
      if (parsed.kind != MemberRef::Kind::best) continue;
      for (auto& d : out) {
        if (d.name != parsed.experiment) continue;
        const std::string only = parsed.group.empty() ? fmt::format("model={}", parsed.model)
                                                      : fmt::format("group={}", parsed.group);
        if (std::find(d.only.begin(), d.only.end(), only) == d.only.end()) d.only.push_back(only);
      }
    }
  }
  return out;
}

namespace {

// The experiments whose dependencies are being run now (outermost first), passed from a sweep to
// the sweeps it starts for its [experiment] depends.
constexpr const char* kDependsChainVar = "RECRUN_DEPENDS_CHAIN";

std::vector<std::string> depends_chain() {
  std::vector<std::string> chain;
  const char* v = std::getenv(kDependsChainVar);
  if (!v) return chain;
  const std::string s(v);
  for (std::size_t at = 0; at <= s.size();) {
    const auto next = std::min(s.find(':', at), s.size());
    if (next > at) chain.push_back(s.substr(at, next - at));
    at = next + 1;
  }
  return chain;
}

std::vector<std::string> dependency_command(const Dependency& d, const DependencyRun& how) {
  std::vector<std::string> argv = {"recrun", "sweep", d.file.string(), "--results", how.results};
  if (!d.only.empty()) {
    argv.push_back("--only");
    argv.push_back(fmt::format("{}", fmt::join(d.only, ", ")));
  }
  if (how.jobs > 0) argv.insert(argv.end(), {"--jobs", std::to_string(how.jobs)});
  if (how.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(how.threads)});
  for (const auto& dir : how.plugin_dirs) argv.insert(argv.end(), {"--plugin-dir", dir});
  if (how.no_live) argv.push_back("--no-live");
  if (how.no_zygote) argv.push_back("--no-zygote");
  return argv;
}

// Runs `argv` (argv[0] replaced by this executable) with `chain` in its environment; returns
// its exit code (128 + signal when a signal ended it).
int run_child(const std::vector<std::string>& argv, const std::string& chain) {
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  std::vector<char*> cargv;
  cargv.push_back(const_cast<char*>(exe.c_str()));
  for (std::size_t i = 1; i < argv.size(); ++i) cargv.push_back(const_cast<char*>(argv[i].c_str()));
  cargv.push_back(nullptr);
  ::setenv(kDependsChainVar, chain.c_str(), 1);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, cargv.data(), environ);
  ::unsetenv(kDependsChainVar);
  if (rc != 0)
    throw Error(fmt::format("cannot start `{}`: {}", fmt::join(argv, " "), std::strerror(rc)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

}  // namespace

int run_dependencies(const std::vector<Trial>& trials, const Experiment& x,
                     const Registry& registry, const DependencyRun& how) {
  if (x.depends.empty()) return 0;
  const auto chain = depends_chain();
  // Validated even when nothing needs running, so that a wrong name is said at once.
  const auto dependencies = plan_dependencies(trials, x, registry, chain);
  bool any_refs = false;
  for (const auto& t : trials) any_refs |= !member_refs(t, registry).empty();
  if (!any_refs) return 0;  // e.g. --only selected no trial with members
  std::string inner;
  for (const auto& name : chain) inner += name + ":";
  inner += x.name;
  for (const auto& d : dependencies) {
    const auto argv = dependency_command(d, how);
    const std::string shown = fmt::format("{}", fmt::join(argv, " "));
    if (how.only_print) {
      fmt::print("depends: a sweep would first run `{}`\n", shown);
      continue;
    }
    fmt::print("depends: running `{}`\n", shown);
    const int rc = run_child(argv, inner);
    if (rc == 128 + SIGINT || rc == 128 + SIGTERM || rc == 128 + SIGHUP) return rc;
    if (rc != 0)
      fmt::print("depends: `{}` ended with exit code {}; trials whose members it did not make "
                 "will wait\n",
                 shown, rc);
  }
  return 0;
}

std::function<Readiness(const Trial&)> member_readiness(const std::vector<const Trial*>& queue,
                                                        const Experiment& x,
                                                        const Registry& registry,
                                                        const results::ResultsStore& store,
                                                        const std::vector<MemberCheck>& checks) {
  std::map<std::string, std::vector<std::string>> refs_of;
  for (const auto* t : queue)
    if (auto refs = member_refs(*t, registry); !refs.empty()) refs_of[t->key] = std::move(refs);
  if (refs_of.empty()) return nullptr;
  std::map<std::string, std::string> made_by;
  for (const auto& c : checks) made_by[c.ref] = c.produced_by;
  return [refs_of = std::move(refs_of), made_by = std::move(made_by), queue, &x,
          &store](const Trial& t) -> Readiness {
    const auto it = refs_of.find(t.key);
    if (it == refs_of.end()) return {};
    for (const auto& ref : it->second) {
      MemberRef parsed;
      try {
        parsed = parse_member_ref(ref);
      } catch (const std::exception&) {
        return {};  // the trial fails with the parse error
      }
      if (parsed.kind != MemberRef::Kind::best || parsed.experiment != x.name) continue;
      for (const auto* p : queue) {
        if (p->key == t.key || p->model != parsed.model ||
            (!parsed.group.empty() && p->group != parsed.group))
          continue;
        const auto row = store.find(p->key);
        if (row && (row->status == results::RunStatus::pending ||
                    row->status == results::RunStatus::running ||
                    row->status == results::RunStatus::interrupted))
          return {Readiness::Kind::later, {}};
      }
    }
    std::vector<std::string> missing;
    for (const auto& ref : it->second) {
      try {
        trial::resolve_run_ref(store, ref, x.protocol.monitor);
      } catch (const std::exception& e) {
        const auto by = made_by.find(ref);
        missing.push_back(by == made_by.end() || by->second.empty()
                              ? std::string(e.what())
                              : fmt::format("{}; made by {}", e.what(), by->second));
      }
    }
    if (missing.empty()) return {};
    return {Readiness::Kind::waiting, fmt::format("{}", fmt::join(missing, "; "))};
  };
}

std::string describe(const MemberCheck& c, const std::string& monitor) {
  const std::string head =
      fmt::format("member '{}' (group{} {})", c.ref, c.groups.size() > 1 ? "s" : "",
                  fmt::join(c.groups, ", "));
  if (c.run) {
    std::string value;
    for (const auto& m : c.run->valid_metrics)
      if (m.name == monitor) value = fmt::format(", valid {} {:.4f}", monitor, m.value);
    return fmt::format("{}: run {} ({}{})", head, c.run->trial_key, c.run->model, value);
  }
  return fmt::format("{}: missing: {}{}", head, c.problem,
                     c.produced_by.empty() ? "" : fmt::format("; made by {}", c.produced_by));
}

}  // namespace recrun::sweep
