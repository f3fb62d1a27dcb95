// Reading a data file (recrun/text.hpp): Location's errors, FileBytes (the file mapped or read
// whole, only regular files, never blocking) and LineReader (lines, BOM, bounded length).
#include "recrun/text.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "recrun/error.hpp"

namespace recrun::text {

void Location::fail(const std::string& message) const {
  if (file) throw DataError(*file, line, message);
  throw DataError(message);
}

FileBytes::FileBytes(const std::filesystem::path& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    throw DataError(path, 0,
                    fmt::format("cannot open: {}{}", std::strerror(err),
                                err == ENOENT ? " (check the data directory and file name)" : ""));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw DataError(path, 0, fmt::format("cannot stat: {}", std::strerror(err)));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw DataError(path, 0, "is a directory, expected a file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISCHR(st.st_mode)    ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "a special file";
    throw DataError(path, 0,
                    fmt::format("is not a regular file ({}); data files must be regular files", kind));
  }
  if (st.st_size > 0) {
    // MAP_POPULATE maps the whole file in one go: far cheaper than a page fault per 4 KiB
    // when every byte is about to be read anyway.
    void* map = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ,
                       MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map != MAP_FAILED) {
      ::madvise(map, static_cast<std::size_t>(st.st_size), MADV_SEQUENTIAL);
      map_ = map;
      data_ = static_cast<const char*>(map);
      size_ = static_cast<std::size_t>(st.st_size);
      ::close(fd);
      return;
    }
  }
  // Not mappable (empty, a special file system): read it the slow way, never past the size
  // fstat reported (plus one block, to notice a file that grows while it is read).
  const auto limit = static_cast<std::size_t>(st.st_size) + (1 << 16);
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw DataError(path, 0, fmt::format("read failed: {}", std::strerror(err)));
    }
    if (n == 0) break;
    owned_.append(buf, static_cast<std::size_t>(n));
    if (owned_.size() > limit) {
      ::close(fd);
      throw DataError(path, 0, "grew while it was read; data files must not change during loading");
    }
  }
  ::close(fd);
  data_ = owned_.data();
  size_ = owned_.size();
}

FileBytes::~FileBytes() { release(); }

void FileBytes::release() noexcept {
  if (map_) ::munmap(map_, size_);
  map_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  owned_.clear();
}

FileBytes::FileBytes(FileBytes&& other) noexcept { *this = std::move(other); }

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  if (this == &other) return *this;
  release();
  path_ = std::move(other.path_);
  map_ = std::exchange(other.map_, nullptr);
  size_ = std::exchange(other.size_, 0);
  owned_ = std::move(other.owned_);
  data_ = map_ ? static_cast<const char*>(map_) : owned_.data();
  other.data_ = nullptr;
  other.owned_.clear();
  return *this;
}

LineReader::LineReader(std::string_view data) noexcept
    : pos_(data.data()), end_(data.data() + data.size()) {
  if (data.size() >= 3 && std::memcmp(data.data(), "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
}

LineReader::LineReader(std::string_view data, const std::filesystem::path& file,
                       std::size_t max_line_bytes) noexcept
    : LineReader(data) {
  file_ = &file;
  max_line_ = max_line_bytes;
}

bool LineReader::next(std::string_view& line) {
  if (pos_ >= end_) return false;
  // Searching at most one byte past the bound keeps a file without line breaks from being
  // scanned (and then split) whole.
  const auto left = static_cast<std::size_t>(end_ - pos_);
  const std::size_t window = left > max_line_ ? max_line_ + 1 : left;
  const char* nl = static_cast<const char*>(std::memchr(pos_, '\n', window));
  if (!nl && window > max_line_) {
    const Location at{file_, line_no_ + 1};
    at.fail(fmt::format("line is longer than {} MiB (is this a text data file? a binary file or "
                        "one without line breaks cannot be read line by line)",
                        max_line_ >> 20));
  }
  const char* stop = nl ? nl : end_;
  const char* last = stop;
  if (last > pos_ && last[-1] == '\r') --last;
  line = std::string_view(pos_, static_cast<std::size_t>(last - pos_));
  pos_ = nl ? nl + 1 : end_;
  ++line_no_;
  return true;
}

std::size_t split(std::string_view line, char delim, std::vector<std::string_view>& out) {
  out.clear();
  const char* p = line.data();
  const char* end = p + line.size();
  for (;;) {
    const char* d = static_cast<const char*>(std::memchr(p, delim, end - p));
    if (!d) {
      out.emplace_back(p, static_cast<std::size_t>(end - p));
      return out.size();
    }
    out.emplace_back(p, static_cast<std::size_t>(d - p));
    p = d + 1;
  }
}

std::size_t split(std::string_view line, std::string_view delim,
                  std::vector<std::string_view>& out) {
  if (delim.size() == 1) return split(line, delim[0], out);
  out.clear();
  std::size_t pos = 0;
  for (;;) {
    const std::size_t d = delim.empty() ? std::string_view::npos : line.find(delim, pos);
    if (d == std::string_view::npos) {
      out.push_back(line.substr(pos));
      return out.size();
    }
    out.push_back(line.substr(pos, d - pos));
    pos = d + delim.size();
  }
}

const std::vector<std::string_view>& CsvSplitter::split(std::string_view line, const Location& at) {
  fields_.clear();
  if (line.find('"') == std::string_view::npos) {
    text::split(line, delim_, fields_);
    return fields_;
  }
  // Unescaped text is never longer than the line, so reserving it up front keeps every view into
  // scratch_ valid while this record is split.
  scratch_.clear();
  scratch_.reserve(line.size());
  std::size_t i = 0;
  for (;;) {
    if (i < line.size() && line[i] == '"') {
      const std::size_t start = scratch_.size();
      ++i;
      for (;;) {
        if (i >= line.size())
          at.fail("unterminated quoted field (a CSV record must fit on one line; close the quote "
                  "or double it as \"\")");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            scratch_.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        scratch_.push_back(line[i++]);
      }
      fields_.emplace_back(scratch_.data() + start, scratch_.size() - start);
      if (i == line.size()) return fields_;
      if (line[i] != delim_)
        at.fail(fmt::format("text after a closing quote in field {} (quote the whole field)",
                            fields_.size()));
      ++i;
    } else {
      const std::size_t d = line.find(delim_, i);
      if (d == std::string_view::npos) {
        fields_.push_back(line.substr(i));
        return fields_;
      }
      fields_.push_back(line.substr(i, d - i));
      i = d + 1;
    }
    if (i == line.size()) {  // a trailing delimiter leaves one empty field
      fields_.emplace_back();
      return fields_;
    }
  }
}

std::string_view trim(std::string_view s) noexcept {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace recrun::text
