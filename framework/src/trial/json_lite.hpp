// Just enough JSON for the flat objects recrun stores in text columns (the protocol): strings,
// numbers, booleans and arrays of those, one level deep. Not a general JSON library.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace recrun::trial::json {

/// A scalar: string, number or boolean.
using Scalar = std::variant<std::string, double, bool>;
/// A member value: a scalar or an array of scalars.
using Value = std::variant<Scalar, std::vector<Scalar>>;

/// `text` as a JSON string literal, quotes included.
std::string quote(std::string_view text);

/// Parses a flat object; throws recrun::Error naming the offset on malformed input.
std::map<std::string, Value> parse_flat_object(std::string_view text);

}  // namespace recrun::trial::json
