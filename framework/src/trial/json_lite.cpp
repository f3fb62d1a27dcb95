#include "trial/json_lite.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "recrun/error.hpp"

namespace recrun::trial::json {

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

namespace {

class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  std::map<std::string, Value> object() {
    std::map<std::string, Value> out;
    expect('{');
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return out;
    }
    while (true) {
      skip_space();
      std::string key = string();
      expect(':');
      skip_space();
      if (peek() == '[') {
        out[key] = array();
      } else {
        out[key] = scalar();
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return out;
    }
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw Error(fmt::format("malformed JSON at offset {}: {} in '{}'", pos_, what, text_));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size()) fail("unfinished escape");
        const char e = text_[pos_++];
        switch (e) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case 'r': c = '\r'; break;
          case 'u': {
            if (pos_ + 4 > text_.size()) fail("short \\u escape");
            unsigned code = 0;
            std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, code, 16);
            pos_ += 4;
            c = static_cast<char>(code);  // only control characters are written this way
            break;
          }
          default: c = e;
        }
      }
      out += c;
    }
    expect('"');
    return out;
  }
  Scalar scalar() {
    skip_space();
    if (peek() == '"') return string();
    if (text_.substr(pos_, 4) == "true") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "false") {
      pos_ += 5;
      return false;
    }
    double v = 0;
    const auto [end, ec] = std::from_chars(text_.data() + pos_, text_.data() + text_.size(), v);
    if (ec != std::errc{}) fail("expected a value");
    pos_ = static_cast<std::size_t>(end - text_.data());
    return v;
  }
  std::vector<Scalar> array() {
    std::vector<Scalar> out;
    expect('[');
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return out;
    }
    while (true) {
      out.push_back(scalar());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return out;
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::map<std::string, Value> parse_flat_object(std::string_view text) { return Reader(text).object(); }

}  // namespace recrun::trial::json
