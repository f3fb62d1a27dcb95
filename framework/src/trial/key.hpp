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
#include "trial/protocol.hpp"

namespace recrun::trial {

/// 64-bit FNV-1a of `text` as 16 lower-case hex digits: stable across runs and machines.
std::string hash_hex(std::string_view text);

/// The text a trial key hashes: format version, model, every resolved parameter (sorted, in
/// canonical text), the data fingerprint, the protocol's canonical text and the seed.
std::string canonical_text(const std::string& model, const Params& params,
                           const std::string& data_fingerprint, const Protocol& protocol,
                           std::int64_t seed);

/// 16 hex digits: hash_hex(canonical_text(...)).
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
