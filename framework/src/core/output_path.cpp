// The output-path policy (core/output_path.hpp).
#include "core/output_path.hpp"

#include <fmt/format.h>

#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "sdk/shared_util.hpp"

namespace recrun::core {

namespace fs = std::filesystem;

namespace {

// The path with symlinks and dot-segments resolved as far as it exists.
fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path out = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p, ec).lexically_normal() : out;
}

bool is_below(const fs::path& p, const fs::path& root) {
  auto r = root.begin();
  auto i = p.begin();
  for (; r != root.end(); ++r, ++i) {
    if (r->empty()) continue;  // a trailing separator
    if (i == p.end() || *i != *r) return false;
  }
  return true;
}

}  // namespace

bool check_output_path(const OutputRequest& r) {
  const std::string shown = text::printable(r.path.string());
  if (r.path.empty())
    throw Error(fmt::format("{} is empty: name the file to write, or - for standard output",
                            r.flag));
  if (r.path == "-") return true;
  std::error_code ec;
  const fs::file_status link = fs::symlink_status(r.path, ec);
  const fs::file_status st = fs::status(r.path, ec);  // follows a symlink to its target
  if (fs::is_symlink(link) && ec == std::errc::too_many_symbolic_link_levels)
    throw Error(fmt::format("{} '{}' is a symbolic link loop; remove it or name another file",
                            r.flag, shown));
  const bool exists = fs::exists(st);
  if (exists && !fs::is_regular_file(st))
    throw Error(fmt::format("{} '{}' is {}{}, not a regular file; recrun replaces only regular "
                            "files, --force or not: name a new file",
                            r.flag, shown, util::file_kind(st.type()),
                            fs::is_symlink(link) ? " (through a symbolic link)" : ""));
  const fs::path target = resolved(r.path);
  for (const auto& p : r.protect) {
    const fs::path guarded = resolved(p.path);
    bool hit = p.tree ? is_below(target, guarded) : target == guarded;
    if (!hit && exists && !p.tree) hit = fs::equivalent(r.path, p.path, ec);  // a hard link
    if (hit)
      throw Error(fmt::format("{} '{}' is {}{}; writing there would destroy it, --force or not: "
                              "name another file",
                              r.flag, shown, p.what,
                              p.tree ? fmt::format(" ({})", text::printable(p.path.string()))
                                     : std::string()));
  }
  if (exists && r.named_by_user && !r.force)
    throw Error(fmt::format("{} '{}' already exists; pass --force to replace it, or name another "
                            "file",
                            r.flag, shown));
  return false;
}

std::vector<ProtectedPath> results_directory_paths(const fs::path& root) {
  std::vector<ProtectedPath> out;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    out.push_back({root / (std::string("results.db") + suffix),
                   fmt::format("the results database {}",
                               text::printable((root / "results.db").string())),
                   false});
  out.push_back({root / "checkpoints", "inside the results directory's checkpoints", true});
  out.push_back({root / "shards", "inside the results directory's Slurm shards", true});
  return out;
}

ProtectedPath input_path(const fs::path& file, std::string what) {
  return {file, std::move(what), false};
}

}  // namespace recrun::core
