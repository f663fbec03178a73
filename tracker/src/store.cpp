#include "jobtrail/store.h"

#include <algorithm>
#include <charconv>

#include "postgres/pg_store.h"
#include "sqlite/sqlite_schema.h"
#include "sqlite/sqlite_store.h"

namespace jobtrail {

std::optional<CheckResultRecord> Store::last_check_result(const std::string& check) {
  auto results = check_history(check, 1);
  if (results.empty()) return std::nullopt;
  results.front().failing = check_violations(check, results.front().run_id);
  return std::move(results.front());
}

std::string_view to_string(AnomalyKind kind) noexcept {
  switch (kind) {
    case AnomalyKind::duplicate_success: return "duplicate_success";
    case AnomalyKind::duplicate_idempotency_key: return "duplicate_idempotency_key";
  }
  return "unknown";
}

namespace {

constexpr std::string_view base64url_digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// What a cursor's payload starts with: a later format gets another version, and an old
// cursor is then refused with a reason instead of being misread.
constexpr std::string_view cursor_version = "j1.";

std::string base64url(std::string_view bytes) {
  std::string text;
  std::uint32_t bits = 0;
  int count = 0;
  for (const char byte : bytes) {
    bits = (bits << 8) | static_cast<unsigned char>(byte);
    count += 8;
    while (count >= 6) {
      count -= 6;
      text += base64url_digits[(bits >> count) & 63];
    }
  }
  if (count > 0) text += base64url_digits[(bits << (6 - count)) & 63];
  return text;
}

std::optional<std::string> from_base64url(std::string_view text) {
  std::string bytes;
  std::uint32_t bits = 0;
  int count = 0;
  for (const char digit : text) {
    const auto value = base64url_digits.find(digit);
    if (value == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      bytes += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return bytes;
}

bool parse_integer(std::string_view text, std::int64_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

std::string to_cursor(const ListPosition& position) {
  return base64url(std::string(cursor_version) + std::to_string(position.first_event_at) + "." +
                   std::to_string(position.row));
}

std::optional<ListPosition> parse_cursor(std::string_view cursor) {
  if (cursor.size() > 64) return std::nullopt;
  const std::optional<std::string> payload = from_base64url(cursor);
  if (!payload || !payload->starts_with(cursor_version)) return std::nullopt;
  const std::string_view rest = std::string_view(*payload).substr(cursor_version.size());
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  ListPosition position;
  if (!parse_integer(rest.substr(0, dot), position.first_event_at) || !parse_integer(rest.substr(dot + 1), position.row) ||
      position.row < 0) {
    return std::nullopt;
  }
  // Only the text to_cursor writes: two spellings of one position would be two cursors.
  if (to_cursor(position) != cursor) return std::nullopt;
  return position;
}

JobPage list_page(Store& store, const JobFilter& filter, std::int64_t count_limit) {
  // One job more than asked tells whether the page is the last without counting anything.
  JobFilter probe = filter;
  probe.limit = filter.limit + 1;
  JobPage page;
  page.jobs = store.list_jobs(probe);
  if (page.jobs.size() <= filter.limit) {
    page.total = static_cast<std::int64_t>(page.jobs.size());
    return page;
  }
  page.jobs.resize(filter.limit);
  const JobRecord& last = page.jobs.back();
  page.next_cursor = to_cursor({last.first_event_at, last.row});
  const std::int64_t at_most = static_cast<std::int64_t>(filter.limit) + count_limit;
  const std::int64_t counted = store.count_jobs(filter, at_most + 1);
  page.total_exact = counted <= at_most;
  page.total = std::min(counted, at_most);
  return page;
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
