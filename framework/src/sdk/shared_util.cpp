// Helpers shared by the SDK's implementation and the host (sdk/shared_util.hpp).
#include "shared_util.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "recrun/error.hpp"

namespace recrun::util {

namespace fs = std::filesystem;

namespace {

// Where the bytes go: through a symlink to its target (a dangling one is itself replaced).
fs::path destination(const fs::path& path) {
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(path, ec))) {
    const fs::path target = fs::canonical(path, ec);
    if (!ec) return target;
  }
  return path;
}

// Creates a fresh, empty temporary file beside `target` under a name no other writer uses
// (process id, a counter, and O_EXCL against anything already there).
fs::path create_temporary(const fs::path& target) {
  static std::atomic<std::uint64_t> counter{0};
  // A long file name plus the suffix could exceed NAME_MAX: keep a bounded prefix of it.
  std::string stem = target.filename().string().substr(0, 160);
  for (int tries = 0;; ++tries) {
    const fs::path tmp = target.parent_path() /
                         fmt::format("{}.tmp-{}-{}", stem, static_cast<long>(::getpid()),
                                     counter.fetch_add(1));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      return tmp;
    }
    if (errno != EEXIST || tries > 100)
      throw Error(fmt::format("cannot write '{}': cannot create a temporary file in '{}': {}",
                              target.string(), tmp.parent_path().string(), std::strerror(errno)));
  }
}

// fsync of a file or directory by name; the error text, or empty on success.
std::string sync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return std::strerror(errno);
  std::string why;
  // A directory on a file system that cannot sync one (EINVAL) is no failure of the write.
  if (::fsync(fd) != 0 && !(directory && (errno == EINVAL || errno == EROFS)))
    why = std::strerror(errno);
  ::close(fd);
  return why;
}

}  // namespace

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& fill) {
  const fs::path target = destination(path);
  std::error_code ec;
  if (fs::is_directory(target, ec))
    throw Error(fmt::format("cannot write '{}': it is a directory; name a file", path.string()));
  const fs::path tmp = create_temporary(target);
  try {
    fill(tmp);
    if (const std::string why = sync_path(tmp, false); !why.empty())
      throw Error(fmt::format("cannot write '{}': flushing it to disk failed: {}", path.string(),
                              why));
    if (::rename(tmp.c_str(), target.c_str()) != 0)
      throw Error(fmt::format("cannot write '{}': cannot rename the finished file into place: {}",
                              path.string(), std::strerror(errno)));
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  sync_path(target.has_parent_path() ? target.parent_path() : fs::path("."), true);
}

void write_atomically(const fs::path& path, const std::function<void(std::ostream&)>& fill,
                      bool binary) {
  write_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, binary ? std::ios::binary | std::ios::trunc : std::ios::trunc);
    if (!out)
      throw Error(fmt::format("cannot write '{}': {}", tmp.string(), std::strerror(errno)));
    fill(out);
    out.close();
    if (!out) throw Error(fmt::format("cannot write '{}' (is the disk full?)", path.string()));
  });
}

void write_atomically(const fs::path& path, std::string_view bytes) {
  write_atomically(
      path,
      [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); },
      true);
}

std::string file_kind(fs::file_type type) {
  switch (type) {
    case fs::file_type::directory: return "a directory";
    case fs::file_type::fifo: return "a FIFO (named pipe)";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::symlink: return "a symbolic link";
    case fs::file_type::regular: return "a regular file";
    default: return "not a regular file";
  }
}

void advise_huge_pages(const void* data, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  constexpr std::uintptr_t huge = std::uintptr_t{1} << 21;
  if (bytes < 4 * huge) return;
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + huge - 1) & ~(huge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(huge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

}  // namespace recrun::util
