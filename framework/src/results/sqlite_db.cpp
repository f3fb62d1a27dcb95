#include "results/sqlite_db.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <system_error>
#include <thread>

#include <fmt/format.h>

namespace recrun::results {

namespace {

std::string compose_what(const std::string& message, const std::filesystem::path& db_path,
                         const std::string& sql, const std::string& sqlite_message) {
  std::string text = fmt::format("results store {}: {}", db_path.string(), message);
  if (!sqlite_message.empty()) {
    text += fmt::format(": {}", sqlite_message);
  }
  if (!sql.empty()) {
    text += fmt::format(" [SQL: {}]", sql);
  }
  return text;
}

}  // namespace

// Jitter keeps processes that collided once from waking in lockstep and colliding again.
void busy_backoff(int attempt) {
  thread_local std::minstd_rand rng(static_cast<unsigned>(::getpid()) ^
                                    static_cast<unsigned>(std::random_device{}()));
  const int cap_ms = std::min(50, 1 << std::min(attempt, 6));
  std::uniform_int_distribution<int> jitter(0, cap_ms * 1000);
  std::this_thread::sleep_for(std::chrono::microseconds(500 + jitter(rng)));
}

StoreError::StoreError(std::string message, std::filesystem::path db_path, std::string sql,
                       std::string sqlite_message, int sqlite_code)
    : std::runtime_error(compose_what(message, db_path, sql, sqlite_message)),
      message_(std::move(message)),
      db_path_(std::move(db_path)),
      sql_(std::move(sql)),
      sqlite_message_(std::move(sqlite_message)),
      sqlite_code_(sqlite_code) {}

bool is_busy_code(int rc) noexcept {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// ---------------------------------------------------------------------------------- Statement

Statement::Statement(Database& db, std::string_view sql) : db_(&db), stmt_(nullptr) {
  const int rc = sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()),
                                    &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    db.throw_error(rc, "cannot prepare statement", sql);
  }
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

std::string Statement::sql() const {
  const char* text = sqlite3_sql(stmt_);
  return text != nullptr ? std::string(text) : std::string();
}

void Statement::bind_int64(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) db_->throw_error(rc, fmt::format("cannot bind parameter {}", index), sql());
}

void Statement::bind_double(int index, double value) {
  const int rc = std::isnan(value) ? sqlite3_bind_null(stmt_, index)
                                   : sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) db_->throw_error(rc, fmt::format("cannot bind parameter {}", index), sql());
}

void Statement::bind_text(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so temporaries are safe to bind.
  const int rc = sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8);
  if (rc != SQLITE_OK) db_->throw_error(rc, fmt::format("cannot bind parameter {}", index), sql());
}

Statement& Statement::bind_blob(int index, std::span<const std::byte> bytes) {
  // A zero-length blob still binds a BLOB (not NULL): the pointer must not be null.
  static const std::byte empty{};
  const int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &empty : bytes.data(),
                                     bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) db_->throw_error(rc, fmt::format("cannot bind parameter {}", index), sql());
  return *this;
}

std::vector<std::byte> Statement::blob(int column) const {
  const void* bytes = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (bytes == nullptr || size <= 0) return {};
  const auto* first = static_cast<const std::byte*>(bytes);
  return std::vector<std::byte>(first, first + size);
}

void Statement::bind_null(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) db_->throw_error(rc, fmt::format("cannot bind parameter {}", index), sql());
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_->throw_error(rc, "statement failed", sql());
}

void Statement::execute() {
  while (step()) {
  }
}

Statement& Statement::reset() {
  // sqlite3_reset repeats the previous step's error; that error was already thrown.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return *this;
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::text(int column) const {
  const auto* bytes = sqlite3_column_text(stmt_, column);
  if (bytes == nullptr) return {};
  const int size = sqlite3_column_bytes(stmt_, column);
  return std::string(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size));
}

std::optional<std::int64_t> Statement::opt_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

std::optional<double> Statement::opt_real(int column) const {
  if (is_null(column)) return std::nullopt;
  return real(column);
}

// ----------------------------------------------------------------------------------- Database

Database::Database(std::filesystem::path path, std::chrono::milliseconds busy_timeout,
                   bool create)
    : path_(std::move(path)), busy_timeout_(busy_timeout) {
  // FULLMUTEX: the store serialises its own calls, but a trainer may heartbeat from a second
  // thread, and SQLite must then guard its connection state too.
  const int flags =
      SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
  const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError(create ? "cannot open the database (is the directory writable?)"
                            : "cannot open the database (it must exist and be writable)",
                     path_, {},
                     std::move(message), rc);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(std::min<std::int64_t>(busy_timeout_.count(),
                                                                    INT32_MAX)));
}

Database::Database(std::filesystem::path path, std::chrono::milliseconds busy_timeout,
                   ReadOnly mode)
    : path_(std::move(path)), busy_timeout_(busy_timeout) {
  // A URI, so that immutable=1 can be passed; the path's own '%', '?' and '#' are escaped.
  std::string uri = "file:";
  for (const char c : std::filesystem::absolute(path_).string()) {
    if (c == '%' || c == '?' || c == '#') uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else uri += c;
  }
  if (mode.immutable) uri += "?immutable=1";
  const int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX;
  const int rc = sqlite3_open_v2(uri.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError("cannot open the database to read it", path_, {}, std::move(message), rc);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(std::min<std::int64_t>(busy_timeout_.count(),
                                                                    INT32_MAX)));
}

Database::~Database() { sqlite3_close_v2(db_); }

void Database::throw_error(int rc, std::string_view what, std::string_view sql) const {
  std::string message = sqlite3_errmsg(db_);
  if ((sqlite3_errcode(db_) & 0xff) != (rc & 0xff)) {
    // The connection's message can belong to another call (sqlite3_reset after an error,
    // sqlite3_exec cleanup); the code's own description is then the accurate one.
    message = sqlite3_errstr(rc);
  }
  std::string text(what);
  if (is_busy_code(rc)) {
    text += fmt::format(" (another process held the database lock for more than {} ms)",
                        busy_timeout_.count());
  }
  throw StoreError(std::move(text), path_, std::string(sql), std::move(message), rc);
}

void Database::exec(std::string_view sql) {
  const std::string text(sql);
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout_;
  for (int attempt = 0;; ++attempt) {
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return;
    // Only retry when nothing of a multi-statement script can have run, i.e. outside a
    // transaction: inside one, a retry would re-run statements that already took effect.
    const bool retryable = is_busy_code(rc) && sqlite3_get_autocommit(db_) != 0 &&
                           std::chrono::steady_clock::now() < deadline;
    if (!retryable) throw_error(rc, "statement failed", sql);
    busy_backoff(attempt);
  }
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

std::int64_t Database::changes() const { return sqlite3_changes64(db_); }

void Database::begin(const char* begin_sql) {
  // SQLite's busy handler already waits for the write lock; this loop covers the busy cases
  // it returns immediately (WAL recovery by another connection, a journal-mode switch).
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout_;
  for (int attempt = 0;; ++attempt) {
    const int rc = sqlite3_exec(db_, begin_sql, nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return;
    if (!is_busy_code(rc) || std::chrono::steady_clock::now() >= deadline) {
      throw_error(rc, "cannot start a transaction", begin_sql);
    }
    busy_backoff(attempt);
  }
}

void Database::commit() {
  const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw_error(rc, "cannot commit", "COMMIT");
}

void Database::rollback_quietly() noexcept {
  // After some errors SQLite has already rolled back; ROLLBACK would then fail harmlessly.
  if (sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

}  // namespace recrun::results
