// The results database's schema, as SQL. docs/results-schema.md explains every column.
#pragma once

#include <string_view>

namespace recrun::results {

/// Stored in PRAGMA user_version. Bump it, and add a migration step in results_store.cpp,
/// whenever the DDL below changes.
inline constexpr int kSchemaVersion = 1;

/// DDL for a fresh database at kSchemaVersion (tables, indexes, views).
std::string_view schema_sql();

}  // namespace recrun::results
