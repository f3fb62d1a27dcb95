// recrun/text.hpp — fast, strict text parsing shared by DataSource plugins.
//
// A data source reads a whole file at once (FileBytes maps it), walks its lines with LineReader,
// splits them into string_views without copying, and converts fields with std::from_chars.
// Every conversion that fails throws DataError naming the file, the 1-based line and the column,
// so a plugin gets "bad input never crashes, and says where" without writing the checks itself.
//
//   recrun::text::FileBytes bytes(dir / "ratings.csv");
//   recrun::text::LineReader lines(bytes.view());
//   std::vector<std::string_view> fields;
//   for (std::string_view line; lines.next(line);) {
//     recrun::text::split(line, ',', fields);
//     const auto at = recrun::text::Location{&bytes.path(), lines.line_no()};
//     const std::int64_t time = recrun::text::parse_int(fields[2], at, "timestamp");
//   }
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/data_source.hpp"

namespace recrun::text {

/// A place in an input file, for error messages. `file` must outlive the Location.
struct Location {
  /// The file being read.
  const std::filesystem::path* file = nullptr;
  /// 1-based line number (0: the file as a whole).
  std::int64_t line = 0;

  /// Throws DataError(file, line, message).
  [[noreturn]] void fail(const std::string& message) const;
};

/// The bytes of a whole file: memory-mapped when possible, read into memory otherwise.
/// Read-only; views into it stay valid while the object lives.
class FileBytes {
 public:
  /// Opens `path` (symlinks followed); throws DataError naming it when it is missing,
  /// unreadable or not a regular file (a device such as /dev/zero, a FIFO, a socket), so that
  /// hostile input can neither grow without bound nor block for ever.
  explicit FileBytes(const std::filesystem::path& path);
  ~FileBytes();
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  /// The whole contents, byte for byte (a UTF-8 byte-order mark included; LineReader skips it).
  std::string_view view() const noexcept { return {data_, size_}; }
  /// The path it was opened with.
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  void release() noexcept;
  std::filesystem::path path_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  void* map_ = nullptr;  // non-null when data_ is an mmap
  std::string owned_;    // the contents when mapping was not possible (pipes, empty files)
};

/// Walks the lines of a buffer. Lines end with '\n' or "\r\n"; the last one may lack an ending;
/// a leading UTF-8 byte-order mark is skipped. Blank lines are returned like any other.
/// A line longer than max_line_bytes throws DataError at its file and line (a binary file or
/// one without line breaks is not a data file, and every field of it would be copied).
class LineReader {
 public:
  /// The default bound on one line's length: 16 MiB.
  static constexpr std::size_t default_max_line_bytes = std::size_t{16} << 20;
  /// Reads `data`, which must outlive the reader.
  explicit LineReader(std::string_view data) noexcept;
  /// Reads `data`, the contents of `file` (which must outlive the reader, and is named in errors).
  LineReader(std::string_view data, const std::filesystem::path& file,
             std::size_t max_line_bytes = default_max_line_bytes) noexcept;
  /// Stores the next line, without its ending, in `line`; false once the buffer is exhausted.
  /// Throws DataError for a line over the bound.
  bool next(std::string_view& line);
  /// 1-based number of the line last returned (0 before the first).
  std::int64_t line_no() const noexcept { return line_no_; }
  /// Where the line last returned is, in `file`.
  Location at(const std::filesystem::path& file) const noexcept { return {&file, line_no_}; }

 private:
  const char* pos_;
  const char* end_;
  std::int64_t line_no_ = 0;
  const std::filesystem::path* file_ = nullptr;
  std::size_t max_line_ = default_max_line_bytes;
};

/// Splits `line` at every `delim` into `out` (cleared first) and returns the field count.
/// An empty line yields one empty field.
std::size_t split(std::string_view line, char delim, std::vector<std::string_view>& out);

/// Splits `line` at every occurrence of a multi-character delimiter such as "::".
std::size_t split(std::string_view line, std::string_view delim,
                  std::vector<std::string_view>& out);

/// Splits CSV records (RFC 4180 quoting): a quoted field may hold the delimiter, and "" inside
/// quotes stands for one quote. Records must fit on one line. Fields point into the line where
/// no unescaping was needed and into the splitter's own buffer otherwise, so they are valid until
/// the next call.
class CsvSplitter {
 public:
  /// A splitter for fields separated by `delim`.
  explicit CsvSplitter(char delim = ',') : delim_(delim) {}
  /// Splits one record; throws DataError at `at` on an unterminated quote or on text between a
  /// closing quote and the next delimiter.
  const std::vector<std::string_view>& split(std::string_view line, const Location& at);

 private:
  char delim_;
  std::vector<std::string_view> fields_;
  std::string scratch_;
};

/// `s` without leading and trailing spaces, tabs and carriage returns.
std::string_view trim(std::string_view s) noexcept;

/// Bytes from an input (a header, an id, a file name, a parameter value) made safe to print on
/// a terminal or into a log: printable ASCII stays as it is; control bytes (escape sequences,
/// NUL, line breaks), the backslash and every byte from 0x7f up are written as \xNN. At most
/// `max_bytes` input bytes are shown, then "...". Every message that quotes input uses it.
std::string printable(std::string_view bytes, std::size_t max_bytes = 200);

/// A whole message for a terminal or a log, the last line of defence for text that may quote
/// input: as printable() (same escapes, no length limit), except that line breaks, tabs and
/// well-formed UTF-8 stay as they are.
std::string terminal_safe(std::string_view message);

/// The field as a base-10 integer (surrounding blanks allowed), or nothing.
std::optional<std::int64_t> to_int(std::string_view field) noexcept;
/// The field as a decimal or scientific floating-point number (surrounding blanks allowed).
std::optional<double> to_double(std::string_view field) noexcept;

/// The field as an integer; otherwise throws DataError at `at`: "column 'time': 'abc' is not an
/// integer".
std::int64_t parse_int(std::string_view field, const Location& at, std::string_view column);
/// The field as a double; otherwise throws DataError at `at` naming `column`.
double parse_double(std::string_view field, const Location& at, std::string_view column);

/// Checks that `field` is an integer id ("42", "-7"; any number of digits) and returns it in
/// canonical form: blanks trimmed, no '+' and no leading zeros, so that "007" in one file and "7"
/// in another name the same thing. The result points into `field` or, when rewritten, into `buf`.
/// Otherwise throws DataError at `at`: "column 'user': 'u17' is not an integer id".
std::string_view integer_id(std::string_view field, const Location& at, std::string_view column,
                            std::string& buf);

/// Parses blank-separated floats ("0.1 -2 3e-4") into `out` (cleared first); throws DataError at
/// `at` naming `column` and the position of the first value that is not a number.
void parse_floats(std::string_view field, const Location& at, std::string_view column,
                  std::vector<float>& out);

/// Index of the first header field equal to any of `names` (ASCII case-insensitive, blanks
/// trimmed), or nothing.
std::optional<std::size_t> find_column(std::span<const std::string_view> header,
                                       std::span<const std::string_view> names);
/// Like find_column, but a header where more than one field matches `names` (a duplicated
/// column such as "user,user", or two spellings of one role such as "user,userId") throws
/// DataError at `at` naming both columns: which of them holds the data would be a guess.
std::optional<std::size_t> find_column(std::span<const std::string_view> header,
                                       std::span<const std::string_view> names,
                                       const Location& at);

/// Throws DataError at `at` when two header fields have the same name (ASCII case-insensitive,
/// blanks trimmed; empty names are not compared), naming the column and both positions.
void check_unique_columns(std::span<const std::string_view> header, const Location& at);

/// Whether `s` is well-formed UTF-8.
bool is_utf8(std::string_view s) noexcept;
/// Converts ISO-8859-1 (latin-1) text to UTF-8.
std::string latin1_to_utf8(std::string_view s);

/// Fingerprint of a data set's source files: a hash (XXH3-64) over each file's name, size and
/// contents, in the order they are added. Same files, same fingerprint; any changed byte changes
/// it. The data fingerprint is part of every trial key.
class Fingerprint {
 public:
  /// Adds one file; `name` should be the file name relative to the data directory.
  void add(std::string_view name, std::string_view contents);
  /// 16 lowercase hex digits.
  std::string hex() const;

 private:
  std::uint64_t state_ = 0x72656372756e3032ULL;  // "recrun02": format version 2
};

/// The name a data set gets from its directory: its last component, with "." and trailing
/// slashes resolved ("data/ml-latest-small/" -> "ml-latest-small").
std::string directory_name(const std::filesystem::path& dir);

/// Reports rows that were skipped safely. Every row of one kind in one file sends the same
/// message, naming the first occurrence, so the host's per-message counts add up:
/// "genres.tsv: item not in the interactions; row skipped (first at line 17: item '999')".
class SkipReporter {
 public:
  /// Reports to `sink`, which must outlive the reporter.
  explicit SkipReporter(const WarningSink& sink) : sink_(sink) {}
  /// Counts one skipped row of kind `what` at `at`; `detail` describes the first occurrence.
  void skip(const Location& at, std::string_view what, std::string_view detail);
  /// Sends a one-off warning about `file` as a whole.
  void note(const std::filesystem::path& file, std::string_view what);

 private:
  const WarningSink& sink_;
  std::map<std::string, std::string, std::less<>> first_;
};

}  // namespace recrun::text
