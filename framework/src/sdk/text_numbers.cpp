// Fields as numbers and ids (recrun/text.hpp), with file:line errors that quote the field
// printably.
#include "recrun/text.hpp"

#include <fmt/format.h>

#include <charconv>

#include "recrun/error.hpp"

namespace recrun::text {

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

}  // namespace recrun::text
