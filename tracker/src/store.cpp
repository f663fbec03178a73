#include "jobtrail/store.h"

#include "postgres/pg_store.h"
#include "sqlite/sqlite_schema.h"
#include "sqlite/sqlite_store.h"

namespace jobtrail {

std::string_view to_string(AnomalyKind kind) noexcept {
  switch (kind) {
    case AnomalyKind::duplicate_success: return "duplicate_success";
    case AnomalyKind::duplicate_idempotency_key: return "duplicate_idempotency_key";
  }
  return "unknown";
}

std::string printable_url(const std::string& url) { return pg::redact(url); }

std::string without_secrets(std::string_view text, const std::string& url) { return pg::without_secrets(text, url); }

int latest_schema_version() noexcept { return sqlite::latest_version(); }

namespace {
std::unique_ptr<Store> open_store_as_named(const std::string& url, const OpenOptions& options);
}  // namespace

std::unique_ptr<Store> open_store(const std::string& url, const OpenOptions& options) {
  try {
    return open_store_as_named(url, options);
  } catch (const StoreError& error) {
    // Whatever part of the way down put the URL in its message, its password stays out.
    const std::string message = error.what();
    const std::string shown = without_secrets(message, url);
    if (shown == message) throw;
    throw StoreError(error.kind(), shown);
  }
}

namespace {

std::unique_ptr<Store> open_store_as_named(const std::string& url, const OpenOptions& options) {
  if (url.empty()) {
    throw StoreError(StoreError::Kind::invalid_url, "no store given (use --db or JOBTRAIL_DB)");
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return std::make_unique<PostgresStore>(url, options);
  }
  std::string path = url;
  if (url.rfind("sqlite:", 0) == 0) {
    path = url.substr(7);
    // Accept sqlite:///abs/path as well as sqlite:/abs/path and sqlite:relative.
    if (path.rfind("//", 0) == 0) path = path.substr(2);
  } else if (auto scheme = url.find("://"); scheme != std::string::npos) {
    throw StoreError(StoreError::Kind::invalid_url,
                     "unknown store URL scheme in \"" + pg::redact(url) +
                         "\" (use sqlite:PATH, a file path, or postgresql://...)");
  }
  // One setting may follow the path: ?sync=full or ?sync=normal (the default).
  bool sync_full = false;
  if (auto query = path.find('?'); query != std::string::npos) {
    auto setting = path.substr(query + 1);
    path.resize(query);
    if (setting == "sync=full") {
      sync_full = true;
    } else if (setting != "sync=normal") {
      throw StoreError(StoreError::Kind::invalid_url,
                       "unknown setting \"" + setting + "\" in " + url + " (known: sync=full, sync=normal)");
    }
  }
  if (path.empty()) throw StoreError(StoreError::Kind::invalid_url, "empty SQLite path in " + url);
  return std::make_unique<SqliteStore>(path, options, sync_full);
}

}  // namespace

}  // namespace jobtrail
