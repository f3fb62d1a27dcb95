#include "recrun/text.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "recrun/error.hpp"

namespace recrun::text {

void Location::fail(const std::string& message) const {
  if (file) throw DataError(*file, line, message);
  throw DataError(message);
}

// --- FileBytes -----------------------------------------------------------------------------------

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

// --- lines and fields ----------------------------------------------------------------------------

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

// --- numbers -------------------------------------------------------------------------------------

std::optional<std::int64_t> to_int(std::string_view field) noexcept {
  std::string_view s = field;
  // Fast path: the field is exactly the digits, as in almost every row of a real file.
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.back() == '\t' || s.front() == '\t' ||
      s.back() == '\r')
    s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> to_double(std::string_view field) noexcept {
  std::string_view s = trim(field);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace {
// The one escape: a byte as \xNN.
void escape_byte(std::string& out, unsigned char b) { out += fmt::format("\\x{:02x}", b); }

// Length of the well-formed UTF-8 sequence of two or more bytes at `s`, or 0.
std::size_t utf8_sequence(std::string_view s) {
  const auto b = static_cast<unsigned char>(s[0]);
  const std::size_t n = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
  if (n == 0 || s.size() < n || !is_utf8(s.substr(0, n))) return 0;
  // C1 controls (U+0080..U+009F) act on some terminals even encoded: escape them.
  if (n == 2 && b == 0xc2 && static_cast<unsigned char>(s[1]) < 0xa0) return 0;
  return n;
}
}  // namespace

std::string printable(std::string_view bytes, std::size_t max_bytes) {
  std::string out;
  for (char c : bytes.substr(0, max_bytes)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7f || b == '\\')
      escape_byte(out, b);
    else
      out.push_back(c);
  }
  if (bytes.size() > max_bytes) out += "...";
  return out;
}

std::string terminal_safe(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (std::size_t i = 0; i < message.size();) {
    const auto b = static_cast<unsigned char>(message[i]);
    if (b == '\n' || b == '\t' || (b >= 0x20 && b < 0x7f)) {
      out.push_back(message[i++]);
    } else if (const std::size_t n = b >= 0x80 ? utf8_sequence(message.substr(i)) : 0; n > 0) {
      out.append(message.substr(i, n));
      i += n;
    } else {
      escape_byte(out, b);
      ++i;
    }
  }
  return out;
}

namespace {
// Long or binary garbage would swamp the message: a bounded, printable prefix of a field.
std::string shown(std::string_view field) { return printable(field, 40); }
}  // namespace

std::int64_t parse_int(std::string_view field, const Location& at, std::string_view column) {
  if (auto v = to_int(field)) return *v;
  if (trim(field).empty()) at.fail(fmt::format("column '{}' is empty; expected an integer", column));
  const std::string_view t = trim(field);
  const std::size_t sign = !t.empty() && (t[0] == '-' || t[0] == '+') ? 1 : 0;
  if (t.size() > sign && t.find_first_not_of("0123456789", sign) == std::string_view::npos)
    at.fail(fmt::format("column '{}': '{}' is out of range (a 64-bit integer holds at most 19 "
                        "digits, +-9223372036854775807)",
                        column, shown(field)));
  at.fail(fmt::format("column '{}': '{}' is not an integer", column, shown(field)));
}

double parse_double(std::string_view field, const Location& at, std::string_view column) {
  if (auto v = to_double(field)) return *v;
  if (trim(field).empty()) at.fail(fmt::format("column '{}' is empty; expected a number", column));
  at.fail(fmt::format("column '{}': '{}' is not a number", column, shown(field)));
}

std::string_view integer_id(std::string_view field, const Location& at, std::string_view column,
                            std::string& buf) {
  std::string_view s = field;
  if (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t' ||
                     s.back() == '\r'))
    s = trim(s);
  const std::size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  bool digits = sign < s.size();
  for (std::size_t k = sign; digits && k < s.size(); ++k) digits = s[k] >= '0' && s[k] <= '9';
  if (!digits) {
    if (s.empty()) at.fail(fmt::format("column '{}' is empty; expected an integer id", column));
    at.fail(fmt::format("column '{}': '{}' is not an integer id", column, shown(s)));
  }
  std::size_t first = sign;  // ids need not fit in 64 bits, so leading zeros are dropped by hand
  while (first + 1 < s.size() && s[first] == '0') ++first;
  const bool negative = s[0] == '-' && s.substr(first) != "0";
  if (first == sign && (s[0] != '+') && (s[0] != '-' || negative)) return s;
  buf.clear();
  if (negative) buf.push_back('-');
  buf.append(s.substr(first));
  return buf;
}

void parse_floats(std::string_view field, const Location& at, std::string_view column,
                  std::vector<float>& out) {
  out.clear();
  const char* p = field.data();
  const char* end = p + field.size();
  for (;;) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
    if (p == end) return;
    const char* start = p;
    if (*p == '+') ++p;
    float v = 0;
    const auto [q, ec] = std::from_chars(p, end, v);
    if (ec != std::errc{} || (q < end && *q != ' ' && *q != '\t' && *q != '\r')) {
      const char* stop = start;
      while (stop < end && *stop != ' ' && *stop != '\t') ++stop;
      at.fail(fmt::format("column '{}', value {}: '{}' is not a number", column, out.size() + 1,
                          shown(std::string_view(start, static_cast<std::size_t>(stop - start)))));
    }
    out.push_back(v);
    p = q;
  }
}

std::optional<std::size_t> find_column(std::span<const std::string_view> header,
                                       std::span<const std::string_view> names) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  const auto iequal = [&](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (lower(a[i]) != lower(b[i])) return false;
    return true;
  };
  for (std::size_t i = 0; i < header.size(); ++i)
    for (std::string_view n : names)
      if (iequal(trim(header[i]), n)) return i;
  return std::nullopt;
}

namespace {
bool iequal_trimmed(std::string_view a, std::string_view b) {
  a = trim(a);
  b = trim(b);
  if (a.size() != b.size()) return false;
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}
}  // namespace

std::optional<std::size_t> find_column(std::span<const std::string_view> header,
                                       std::span<const std::string_view> names,
                                       const Location& at) {
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < header.size(); ++i)
    for (std::string_view n : names)
      if (iequal_trimmed(header[i], n)) {
        if (found && *found != i)
          at.fail(fmt::format("columns {} '{}' and {} '{}' of the header name the same thing; keep "
                              "one of them",
                              *found + 1, trim(header[*found]), i + 1, trim(header[i])));
        found = i;
      }
  return found;
}

void check_unique_columns(std::span<const std::string_view> header, const Location& at) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    // A carriage return inside the first line: the file breaks lines with CR alone (classic
    // Mac), so the whole file reads as one line.
    if (trim(header[i]).find('\r') != std::string_view::npos)
      at.fail("the lines end with a carriage return alone (CR, old Mac line endings), so the file "
              "reads as one line; convert it to LF line endings, e.g. tr '\\r' '\\n' < FILE > "
              "NEW_FILE");
    if (trim(header[i]).empty()) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (iequal_trimmed(header[i], header[j]))
        at.fail(fmt::format("duplicated column '{}' in the header (columns {} and {}); every "
                            "column name must be unique",
                            printable(trim(header[i]), 60), j + 1, i + 1));
  }
}

// --- encodings -----------------------------------------------------------------------------------

bool is_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (end - p <= n) return false;
    for (int k = 1; k <= n; ++k) {
      if ((p[k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

// --- fingerprints --------------------------------------------------------------------------------

void Fingerprint::add(std::string_view name, std::string_view contents) {
  // Each file folds its name's hash, its size and its contents' hash into the state, which seeds
  // the next step: the order of files matters and no two (name, contents) pairs run together.
  // XXH3-64 (libxxhash) throughout; format version 2 (version 1 used a hand-written hash).
  const std::uint64_t parts[3] = {XXH3_64bits(name.data(), name.size()),
                                  static_cast<std::uint64_t>(contents.size()),
                                  XXH3_64bits(contents.data(), contents.size())};
  unsigned char bytes[sizeof parts];
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 8; ++k) bytes[i * 8 + k] = static_cast<unsigned char>(parts[i] >> (8 * k));
  state_ = XXH3_64bits_withSeed(bytes, sizeof bytes, state_);
}

std::string Fingerprint::hex() const { return fmt::format("{:016x}", state_); }

std::string directory_name(const std::filesystem::path& dir) {
  std::filesystem::path p = dir.lexically_normal();
  if (p.has_filename() && p.filename() != "." && p.filename() != "..") return p.filename().string();
  std::error_code ec;
  const auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(dir, ec), ec);
  if (!ec && abs.has_filename()) return abs.filename().string();
  p = p.parent_path();
  return p.has_filename() ? p.filename().string() : std::string("data");
}

// --- warnings ------------------------------------------------------------------------------------

void SkipReporter::skip(const Location& at, std::string_view what, std::string_view detail) {
  std::string key = fmt::format("{}\n{}", at.file ? at.file->string() : std::string{}, what);
  auto it = first_.find(key);
  if (it == first_.end()) {
    std::string message =
        at.file ? fmt::format("{}: {}; row skipped (first at line {}: {})", at.file->string(), what,
                              at.line, detail)
                : fmt::format("{}; row skipped ({})", what, detail);
    it = first_.emplace(std::move(key), std::move(message)).first;
  }
  sink_(it->second);
}

void SkipReporter::note(const std::filesystem::path& file, std::string_view what) {
  sink_(fmt::format("{}: {}", file.string(), what));
}

}  // namespace recrun::text
