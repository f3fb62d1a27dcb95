// The one parser of member references (recrun/member_ref.hpp).
#include "recrun/member_ref.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "recrun/error.hpp"

namespace recrun {

namespace {

constexpr std::string_view kBest = "best:";
constexpr std::string_view kTrain = "train:";
constexpr std::string_view kForms =
    "a trial key (32 hex digits), best:MODEL[@EXPERIMENT[/GROUP]] or "
    "'train:MODEL key=value ...'";

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string MemberRef::inline_spec() const {
  std::string out = model;
  for (const auto& [k, v] : sets) out += fmt::format(" {}={}", k, v);
  return out;
}

MemberRef parse_member_ref(std::string_view raw) {
  const std::string_view text = trim(raw);
  MemberRef ref;
  ref.text = std::string(text);
  const auto fail = [&](const std::string& why) {
    return ParamError(fmt::format("member '{}' {}", text, why));
  };
  if (text.starts_with(kBest)) {
    ref.kind = MemberRef::Kind::best;
    std::string_view rest = text.substr(kBest.size());
    const auto at = rest.find('@');
    ref.model = std::string(rest.substr(0, at));
    if (at != std::string_view::npos) {
      std::string_view where = rest.substr(at + 1);
      const auto slash = where.find('/');
      ref.experiment = std::string(where.substr(0, slash));
      if (slash != std::string_view::npos) {
        ref.group = std::string(where.substr(slash + 1));
        if (ref.group.empty()) throw fail("names no group after '/'; expected best:MODEL@EXPERIMENT/GROUP");
      }
      if (ref.experiment.empty())
        throw fail("names no experiment after '@'; expected best:MODEL@EXPERIMENT");
    }
    if (ref.model.empty()) throw fail("names no model; expected best:MODEL[@EXPERIMENT[/GROUP]]");
    return ref;
  }
  if (text.starts_with(kTrain)) {
    ref.kind = MemberRef::Kind::train;
    std::istringstream words{std::string(text.substr(kTrain.size()))};
    std::string word;
    while (words >> word) {
      if (ref.model.empty()) {
        if (word.find('=') != std::string::npos)
          throw fail(fmt::format("starts with '{}', where the model's name belongs; expected "
                                 "'train:MODEL key=value ...'",
                                 word));
        ref.model = word;
        continue;
      }
      const auto eq = word.find('=');
      if (eq == std::string::npos || eq == 0)
        throw fail(fmt::format("needs key=value after the model name, got '{}'", word));
      ref.sets.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    }
    if (ref.model.empty()) throw fail("names no model; expected 'train:MODEL key=value ...'");
    return ref;
  }
  if (text.size() == 32 && is_hex(text)) {
    ref.kind = MemberRef::Kind::run;
    ref.key = std::string(text);
    return ref;
  }
  if (is_hex(text) && text.size() < 32)
    throw fail(fmt::format("looks like a trial key prefix ({} of 32 hex digits); a member needs "
                           "the full key (`recrun results list` shows it), or one of: {}",
                           text.size(), kForms));
  throw fail(fmt::format("is not {}", kForms));
}

}  // namespace recrun
