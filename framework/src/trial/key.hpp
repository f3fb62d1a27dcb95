// What identifies a trial: the canonical text of everything that changes its results, the key
// hashed from it, and its parameters as the results store keeps them (the stored text is exactly
// what the key hashed, so a row read back resolves to the same key).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "recrun/params.hpp"
#include "recrun/registry.hpp"
#include "results/results_store.hpp"
#include "core/protocol.hpp"

namespace recrun::trial {

/// The trial-key format: part of the canonical text ("recrun-trial-v2") and of its hash.
///   2: XXH3-128 (libxxhash) of the canonical text, 32 hex digits;
///   1: 64-bit FNV-1a, 16 hex digits (recrun before XXH3; such rows stay readable, not runnable).
inline constexpr int kKeyVersion = 2;

/// The key format `key` has by its shape: 2 for 32 hex digits, 1 for 16, 0 for anything else.
int key_version(std::string_view key) noexcept;

/// What to tell a user about a stored key of an older format (empty for a current key): its
/// row stays readable but is not matched to, or run as, the trial it was.
std::string legacy_key_note(std::string_view key);

/// The text a trial key hashes: format version, model, every resolved parameter (sorted, in
/// canonical text), the data fingerprint, the protocol's canonical text and the seed.
std::string canonical_text(const std::string& model, const Params& params,
                           const std::string& data_fingerprint, const Protocol& protocol,
                           std::int64_t seed);

/// How many of `rows` have a key of an older format.
std::size_t count_legacy_keys(const std::vector<results::RunRow>& rows);

/// The trial key: XXH3-128 of canonical_text(...) as 32 lower-case hex digits.
std::string make_key(const std::string& model, const Params& params,
                     const std::string& data_fingerprint, const Protocol& protocol,
                     std::int64_t seed);

/// The model's schema plus the trainer's parameters: what a trial's params are checked against.
std::vector<ParamSpec> full_schema(const ModelInfo& model);

/// The resolved parameters as the results store keeps them (typed, canonical text).
std::vector<results::Param> store_params(const Params& params, const std::vector<ParamSpec>& schema);

/// Rebuilds resolved parameters from the store's rows (the inverse of store_params) against
/// `schema`; throws ParamError if a stored name or value no longer fits the schema.
Params params_from_store(const std::vector<results::Param>& stored,
                         const std::vector<ParamSpec>& schema, const std::string& component);

}  // namespace recrun::trial
