// A thin RAII layer over SQLite's C API: one connection, prepared statements, and
// transactions that wait out other processes' locks. Internal to the results store; nothing
// here knows about runs or experiments.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>
#include <type_traits>
#include <utility>

#include "results/store_error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace recrun::results {

class Database;

/// One prepared statement. Parameters are numbered from 1 as in SQLite; columns from 0.
/// Every failure throws StoreError carrying the SQL and sqlite3_errmsg().
class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  /// Binds an integer, bool, floating-point, string-like, nullptr or std::optional of those
  /// (nullopt binds NULL). NaN binds NULL, which is what SQLite would store anyway.
  template <class T>
  Statement& bind(int index, const T& value);

  /// Binds the arguments to parameters 1..N in order.
  template <class... Ts>
  Statement& bind_all(const Ts&... values) {
    int index = 0;
    (bind(++index, values), ...);
    return *this;
  }

  /// Binds bytes as a BLOB (copied).
  Statement& bind_blob(int index, std::span<const std::byte> bytes);

  /// Advances; true when a row is ready to read, false when the statement is done.
  bool step();
  /// Steps to completion, ignoring any rows (for INSERT/UPDATE/DELETE/PRAGMA).
  void execute();
  /// Rewinds and clears bindings so the statement can run again with new values.
  Statement& reset();

  bool is_null(int column) const;
  std::int64_t int64(int column) const;
  double real(int column) const;
  /// Text of a column; NULL reads as the empty string.
  std::string text(int column) const;
  std::optional<std::int64_t> opt_int64(int column) const;
  std::optional<double> opt_real(int column) const;
  /// Bytes of a BLOB column; NULL reads as empty.
  std::vector<std::byte> blob(int column) const;

  std::string sql() const;

 private:
  void bind_int64(int index, std::int64_t value);
  void bind_double(int index, double value);
  void bind_text(int index, std::string_view value);
  void bind_null(int index);

  Database* db_;
  sqlite3_stmt* stmt_;
};

/// One SQLite connection. Not copyable; a process that forks must open its own after the fork
/// (SQLite connections and their locks do not survive fork()).
class Database {
 public:
  /// Opens (creating if needed, unless `create` is false) the file. `busy_timeout` bounds how
  /// long any call waits for another connection's lock before failing with SQLITE_BUSY.
  Database(std::filesystem::path path, std::chrono::milliseconds busy_timeout,
           bool create = true);
  /// Opens an existing file read-only; with `immutable`, SQLite takes it as unchangeable (no
  /// locks, no -wal/-shm files), for a file in a directory nobody can write.
  struct ReadOnly {
    bool immutable = false;
  };
  Database(std::filesystem::path path, std::chrono::milliseconds busy_timeout, ReadOnly mode);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Runs one or more SQL statements that return no rows of interest, retrying while another
  /// connection holds a lock SQLite does not wait for itself (e.g. a journal-mode switch).
  void exec(std::string_view sql);
  Statement prepare(std::string_view sql) { return Statement(*this, sql); }

  std::int64_t last_insert_rowid() const;
  /// Rows changed by the latest INSERT/UPDATE/DELETE.
  std::int64_t changes() const;

  /// Runs `body` inside BEGIN IMMEDIATE ... COMMIT. IMMEDIATE takes the write lock up front, so
  /// a transaction never has to upgrade a read lock (the upgrade is what deadlocks under
  /// concurrency and fails with SQLITE_BUSY_SNAPSHOT in WAL mode). Rolls back if `body` throws.
  template <class F>
  auto write_transaction(F&& body) {
    return run_transaction("BEGIN IMMEDIATE", std::forward<F>(body));
  }
  /// Runs `body` inside a deferred (read) transaction so multi-statement reads see one snapshot.
  template <class F>
  auto read_transaction(F&& body) {
    return run_transaction("BEGIN", std::forward<F>(body));
  }

  const std::filesystem::path& path() const noexcept { return path_; }
  sqlite3* handle() const noexcept { return db_; }
  std::chrono::milliseconds busy_timeout() const noexcept { return busy_timeout_; }

  /// Throws StoreError for result code `rc` with the connection's current message.
  [[noreturn]] void throw_error(int rc, std::string_view what, std::string_view sql) const;

 private:
  template <class F>
  auto run_transaction(const char* begin_sql, F&& body) {
    begin(begin_sql);
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        body();
        commit();
      } else {
        auto result = body();
        commit();
        return result;
      }
    } catch (...) {
      rollback_quietly();
      throw;
    }
  }
  void begin(const char* begin_sql);
  void commit();
  void rollback_quietly() noexcept;

  std::filesystem::path path_;
  std::chrono::milliseconds busy_timeout_;
  sqlite3* db_ = nullptr;
};

/// True for SQLITE_BUSY/SQLITE_LOCKED and their extended codes: "someone else holds the lock".
bool is_busy_code(int rc) noexcept;

/// Sleeps before retry number `attempt` (0-based): a growing, jittered pause of at most ~50 ms.
void busy_backoff(int attempt);

/// Calls `f` until it does not throw a busy StoreError or `db.busy_timeout()` has passed. For
/// statements outside a transaction that SQLite's own busy handler does not wait for.
template <class F>
auto retry_while_busy(const Database& db, F&& f) {
  const auto deadline = std::chrono::steady_clock::now() + db.busy_timeout();
  for (int attempt = 0;; ++attempt) {
    try {
      return f();
    } catch (const StoreError& error) {
      if (!is_busy_code(error.sqlite_code()) || std::chrono::steady_clock::now() >= deadline) {
        throw;
      }
    }
    busy_backoff(attempt);
  }
}

template <class T>
Statement& Statement::bind(int index, const T& value) {
  using V = std::decay_t<T>;
  if constexpr (std::is_same_v<V, std::nullptr_t> || std::is_same_v<V, std::nullopt_t>) {
    bind_null(index);
  } else if constexpr (std::is_same_v<V, bool>) {
    bind_int64(index, value ? 1 : 0);
  } else if constexpr (std::is_integral_v<V>) {
    bind_int64(index, static_cast<std::int64_t>(value));
  } else if constexpr (std::is_floating_point_v<V>) {
    bind_double(index, static_cast<double>(value));
  } else if constexpr (std::is_convertible_v<const V&, std::string_view>) {
    bind_text(index, std::string_view(value));
  } else if constexpr (std::is_same_v<V, std::filesystem::path>) {
    bind_text(index, value.string());
  } else {
    // std::optional<X>: NULL when empty, X otherwise.
    if (value.has_value()) {
      bind(index, *value);
    } else {
      bind_null(index);
    }
  }
  return *this;
}

}  // namespace recrun::results
