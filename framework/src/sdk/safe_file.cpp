#include "sdk/safe_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "recrun/error.hpp"

namespace recrun::util {
namespace {

// An open descriptor that closes itself.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

// Opens `path` for reading without blocking (O_NONBLOCK: a FIFO would otherwise wait for a
// writer) and checks that it is a regular file; returns its size.
std::uintmax_t open_regular(const std::filesystem::path& path, std::string_view what, Fd& out) {
  out.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (out.fd < 0)
    throw Error(fmt::format("cannot read {} '{}': {}", what, path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(out.fd, &st) != 0)
    throw Error(fmt::format("cannot read {} '{}': {}", what, path.string(), std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    throw Error(fmt::format("{} '{}' is not a regular file ({}); name a regular file", what,
                            path.string(), kind_of(st.st_mode)));
  return static_cast<std::uintmax_t>(st.st_size);
}

}  // namespace

std::uintmax_t check_regular_file(const std::filesystem::path& path, std::string_view what) {
  Fd fd;
  return open_regular(path, what, fd);
}

std::string read_regular_file(const std::filesystem::path& path, std::uintmax_t max_bytes,
                              std::string_view what) {
  Fd fd;
  const std::uintmax_t size = open_regular(path, what, fd);
  const auto too_big = [&](std::uintmax_t bytes) {
    return Error(fmt::format("{} '{}' is {} bytes, over the limit of {} bytes", what, path.string(),
                             bytes, max_bytes));
  };
  if (size > max_bytes) throw too_big(size);
  std::string out;
  out.reserve(static_cast<std::size_t>(size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(fmt::format("cannot read {} '{}': {}", what, path.string(), std::strerror(errno)));
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) throw too_big(out.size() + n);
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace recrun::util
