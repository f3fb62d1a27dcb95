// The results database's schema, as SQL. docs/results-schema.md explains every column.
#pragma once

#include <string_view>

namespace recrun::results {

/// Stored in PRAGMA user_version. Bump it, and add a migration step in results_store.cpp,
/// whenever the DDL below changes.
inline constexpr int kSchemaVersion = 2;

/// DDL for a fresh database's tables and indexes at kSchemaVersion.
std::string_view schema_sql();
/// DDL of the views (created after the tables, and again by a migration that changes them).
std::string_view views_sql();
/// Drops every view (a migration recreates them with views_sql()).
std::string_view drop_views_sql();

}  // namespace recrun::results
