// StoreError: the one exception type of the results store.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace recrun::results {

/// A results-store failure. what() names the database file, what was being done, SQLite's
/// message and the SQL, so a log line alone is enough to find the cause.
class StoreError : public std::runtime_error {
 public:
  /// `sqlite_code` is SQLite's extended result code, or 0 when the error is not SQLite's
  /// (a misuse such as an unknown trial key).
  StoreError(std::string message, std::filesystem::path db_path, std::string sql = {},
             std::string sqlite_message = {}, int sqlite_code = 0);

  /// What the store was doing and why it failed, without path or SQL.
  const std::string& message() const noexcept { return message_; }
  /// The database file the error concerns.
  const std::filesystem::path& db_path() const noexcept { return db_path_; }
  /// The SQL that failed; empty when no statement was involved.
  const std::string& sql() const noexcept { return sql_; }
  /// sqlite3_errmsg() at the time of the failure; empty when SQLite was not involved.
  const std::string& sqlite_message() const noexcept { return sqlite_message_; }
  /// SQLite's extended result code (e.g. SQLITE_BUSY = 5, SQLITE_CONSTRAINT_PRIMARYKEY = 1555).
  int sqlite_code() const noexcept { return sqlite_code_; }

 private:
  std::string message_;
  std::filesystem::path db_path_;
  std::string sql_;
  std::string sqlite_message_;
  int sqlite_code_;
};

}  // namespace recrun::results
