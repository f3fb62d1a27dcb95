// Bytes and encodings (recrun/text.hpp): UTF-8 checks, latin-1 conversion, and the one escaping
// of input bytes that reach a terminal or a log (printable, terminal_safe).
#include "recrun/text.hpp"

#include <fmt/format.h>

#include <cstring>

#include "recrun/error.hpp"

namespace recrun::text {

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

}  // namespace recrun::text
