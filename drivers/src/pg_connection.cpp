#include "jobtrail/drivers/pg_connection.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace jobtrail::pg {

std::string redact(const std::string& url) {
  std::string out = url;
  // postgresql://user:secret@host/db -> postgresql://user:***@host/db
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto authority_end = out.find_first_of("/?", scheme + 3);
    const auto at = out.rfind('@', authority_end == std::string::npos ? out.size() : authority_end);
    if (at != std::string::npos && at > scheme) {
      const auto colon = out.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // And a password=... (or sslpassword=...) parameter, in a URL's query or a key=value
  // string, whether or not the userinfo had one too.
  for (std::size_t from = 0; (from = out.find("password=", from)) != std::string::npos;) {
    const std::size_t name = from >= 3 && out.compare(from - 3, 3, "ssl") == 0 ? from - 3 : from;
    if (name > 0 && std::strchr("?& ", out[name - 1]) == nullptr) {
      from += 9;
      continue;
    }
    auto start = from + 9;
    auto end = out.find_first_of("& ", start);
    out.replace(start, (end == std::string::npos ? out.size() : end) - start, "***");
    from = start + 3;
  }
  return out;
}

namespace {

std::string percent_decoded(std::string_view text) {
  const auto hex = [](char c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;  // called on hex digits only
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

/// The passwords `url` carries: its userinfo's, and every password= or sslpassword= setting.
std::vector<std::string> secrets_of(const std::string& url) {
  std::vector<std::string> secrets;
  const auto keep = [&](std::string_view raw) {
    if (raw.empty()) return;
    secrets.emplace_back(raw);
    if (std::string decoded = percent_decoded(raw); decoded != raw && !decoded.empty()) secrets.push_back(decoded);
  };
  if (const auto scheme = url.find("://"); scheme != std::string::npos) {
    const auto authority_end = url.find_first_of("/?", scheme + 3);
    const auto at = url.rfind('@', authority_end == std::string::npos ? url.size() : authority_end);
    if (at != std::string::npos && at > scheme) {
      const auto colon = url.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) keep(std::string_view(url).substr(colon + 1, at - colon - 1));
    }
  }
  for (std::size_t from = 0; (from = url.find("password=", from)) != std::string::npos; from += 9) {
    const std::size_t start = from + 9;
    std::size_t end = url.find_first_of("& ", start);
    if (end == std::string::npos) end = url.size();
    std::string_view value = std::string_view(url).substr(start, end - start);
    // A quoted value in a key=value string: password='a b'.
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
    keep(value);
  }
  return secrets;
}

using Replacements = std::vector<std::pair<std::string, std::string>>;

/// `text` with every occurrence of each `replacements` key replaced by its value, in one pass
/// over `text`, never over what was already written, the longest key first where several
/// match. Replacing in place, one secret after another, would search the "***" of earlier
/// replacements, and a password of "*" would then triple the message on every pass (the
/// fuzzer found a checks file whose error message did not finish in two minutes).
std::string replaced(std::string_view text, Replacements replacements) {
  std::stable_sort(replacements.begin(), replacements.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    const auto match = std::find_if(replacements.begin(), replacements.end(), [&](const auto& entry) {
      return !entry.first.empty() && text.compare(at, entry.first.size(), entry.first) == 0;
    });
    if (match == replacements.end()) {
      out += text[at++];
    } else {
      out += match->second;
      at += match->first.size();
    }
  }
  return out;
}

}  // namespace

std::string without_secrets(std::string_view text, const std::string& url) {
  if (url.empty()) return std::string(text);
  Replacements secrets;
  for (std::string& secret : secrets_of(url)) secrets.emplace_back(std::move(secret), "***");
  // The URL shown as redact() shows it, and whatever else quotes a password (libpq quotes the
  // part it could not decode) hidden too, even where that makes an odd word of the message; a
  // leak is worse.
  Replacements hidden = secrets;
  hidden.emplace_back(url, replaced(redact(url), secrets));
  return replaced(text, std::move(hidden));
}

namespace {

// libpq's messages span lines ("...failed: No such file\n\tIs the server running...?\n");
// ours are one line.
std::string trimmed(const char* message) {
  std::string text;
  for (const char* c = message ? message : ""; *c; ++c) {
    if (*c == '\n') {
      if (c[1] == '\t') ++c;
      if (c[1] != '\0') text += "; ";
    } else {
      text += *c;
    }
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

StoreError::Kind kind_of_sqlstate(std::string_view state) {
  auto starts = [&](std::string_view prefix) { return state.substr(0, prefix.size()) == prefix; };
  if (starts("08") || state == "57P01" || state == "57P02" || state == "57P03" || starts("53")) {
    return StoreError::Kind::io;  // connection lost, server shutting down or out of resources
  }
  if (state == "40001" || state == "40P01" || state == "55P03" || state == "57014") {
    return StoreError::Kind::busy;  // serialization failure, deadlock, lock or statement timeout
  }
  if (state == "25006") return StoreError::Kind::read_only;
  if (state == "42501" || starts("28")) return StoreError::Kind::cannot_open;
  if (state == "3D000") return StoreError::Kind::not_found;
  return StoreError::Kind::other;
}

// A failed connection attempt has no SQLSTATE to read; its message tells a refused login or a
// missing database (permanent) from a server that is down or unreachable (worth retrying).
StoreError::Kind kind_of_connect_failure(const std::string& message) {
  if (message.find("does not exist") != std::string::npos &&
      message.find("database \"") != std::string::npos) {
    return StoreError::Kind::not_found;
  }
  for (const char* refused : {"authentication failed", "no pg_hba.conf entry", "password is required",
                              "permission denied", "role \"", "invalid", "unrecognized"}) {
    if (message.find(refused) != std::string::npos) return StoreError::Kind::cannot_open;
  }
  return StoreError::Kind::io;
}

}  // namespace

StoreError error_of(PGconn* connection, const PGresult* result, std::string_view what) {
  std::string message = result ? trimmed(PQresultErrorMessage(result)) : "";
  if (message.empty() && connection) message = trimmed(PQerrorMessage(connection));
  if (message.rfind("ERROR:  ", 0) == 0) message = message.substr(8);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  StoreError::Kind kind;
  if (connection && PQstatus(connection) != CONNECTION_OK) {
    kind = StoreError::Kind::io;
  } else if (state) {
    kind = kind_of_sqlstate(state);
  } else {
    kind = StoreError::Kind::io;  // no result at all: the connection failed mid-call
  }
  return StoreError(kind, std::string(what) + ": " + message);
}

std::string_view Result::text(int row, int column) const noexcept {
  return std::string_view(PQgetvalue(result_.get(), row, column),
                          static_cast<std::size_t>(PQgetlength(result_.get(), row, column)));
}

std::int64_t Result::integer(int row, int column) const noexcept {
  auto value = text(row, column);
  std::int64_t number = 0;
  std::from_chars(value.data(), value.data() + value.size(), number);
  return number;
}

std::optional<std::int64_t> Result::optional_integer(int row, int column) const noexcept {
  if (is_null(row, column)) return std::nullopt;
  return integer(row, column);
}

std::string Result::bytes(int row, int column) const {
  auto value = text(row, column);
  if (value.substr(0, 2) != "\\x") return std::string(value);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out((value.size() - 2) / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(nibble(value[2 + 2 * i]) << 4 | nibble(value[3 + 2 * i]));
  }
  return out;
}

std::vector<std::string> Result::text_array(int row, int column) const {
  // PostgreSQL's output of a text[]: "{a,b}", an element in double quotes when it is empty,
  // holds a brace, comma, quote, backslash or white space, or reads NULL, with the quotes and
  // backslashes inside it escaped by a backslash; an unquoted NULL is a null element.
  const std::string_view value = text(row, column);
  std::vector<std::string> elements;
  if (value.size() < 2 || value.front() != '{') return elements;
  std::size_t i = 1;
  while (i < value.size() && value[i] != '}') {
    std::string element;
    if (value[i] == '"') {
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        element += value[i];
      }
      ++i;  // the closing quote
      elements.push_back(std::move(element));
    } else {
      const std::size_t end = std::min(value.find_first_of(",}", i), value.size());
      element.assign(value.substr(i, end - i));
      i = end;
      if (element != "NULL") elements.push_back(std::move(element));
    }
    if (i < value.size() && value[i] == ',') ++i;
  }
  return elements;
}

std::int64_t Result::affected() const noexcept {
  const char* count = PQcmdTuples(result_.get());
  std::int64_t number = 0;
  std::from_chars(count, count + std::strlen(count), number);
  return number;
}

ArrayLiteral& ArrayLiteral::add(std::int64_t value) {
  separate();
  text_ += std::to_string(value);
  return *this;
}

ArrayLiteral& ArrayLiteral::add(std::optional<std::int64_t> value) {
  if (value) return add(*value);
  return add_null();
}

ArrayLiteral& ArrayLiteral::add(std::string_view text) {
  separate();
  text_ += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
  return *this;
}

ArrayLiteral& ArrayLiteral::add_text_or_null(std::string_view text) {
  if (text.empty()) return add_null();
  return add(text);
}

ArrayLiteral& ArrayLiteral::add_null() {
  separate();
  text_ += "NULL";
  return *this;
}

Params& Params::add(std::int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

Params& Params::add(std::string_view text) {
  values_.emplace_back(std::string(text));
  return *this;
}

Params& Params::add(std::optional<std::int64_t> value) {
  if (value) return add(*value);
  return add_null();
}

Params& Params::add_null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

Params& Params::add_text_or_null(std::string_view text) {
  if (text.empty()) return add_null();
  return add(text);
}

Params& Params::add_array(const std::vector<std::string>& elements) {
  ArrayLiteral array;
  for (const auto& element : elements) array.add(std::string_view(element));
  return add(array);
}

Params& Params::add_array(const std::vector<std::int64_t>& elements) {
  ArrayLiteral array;
  for (auto element : elements) array.add(element);
  return add(array);
}

Connection::Connection(const std::string& url) : url_(url) {
  // Defaults first, so that the URL's own settings override them (libpq: later entries win,
  // and the expanded dbname sits after these). A dead network must not hang the writer.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "jobtrail", url.c_str(), nullptr};
  connection_ = PQconnectdbParams(keywords, values, 1);
  if (!connection_) throw StoreError(StoreError::Kind::io, "cannot connect to " + redact(url) + ": out of memory");
  if (PQstatus(connection_) != CONNECTION_OK) {
    // libpq quotes a URL it cannot parse whole, password included.
    std::string message = without_secrets(trimmed(PQerrorMessage(connection_)), url);
    PQfinish(connection_);
    connection_ = nullptr;
    throw StoreError(kind_of_connect_failure(message), "cannot connect to " + redact(url) + ": " + message);
  }
  // Results and errors in a known encoding and format, whatever the server's defaults.
  try {
    execute("SET client_encoding = 'UTF8'; SET client_min_messages = warning; SET datestyle = 'ISO'; "
            "SET bytea_output = 'hex'");
  } catch (...) {
    PQfinish(connection_);  // the destructor does not run for a constructor that throws
    connection_ = nullptr;
    throw;
  }
}

Connection::~Connection() {
  if (connection_) PQfinish(connection_);
}

Result Connection::checked(PGresult* raw, std::string_view what) {
  Result result(raw);
  auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_SINGLE_TUPLE) return result;
  remember_sqlstate(raw);
  throw error_of(connection_, raw, what);
}

Result Connection::execute(std::string_view sql) {
  last_sqlstate_.clear();
  std::string text(sql);
  return checked(PQexec(connection_, text.c_str()), "query failed");
}

Result Connection::exec(const std::string& sql, const Params& params) {
  last_sqlstate_.clear();
  std::vector<const char*> values;
  values.reserve(params.values_.size());
  for (const auto& value : params.values_) values.push_back(value ? value->c_str() : nullptr);
  return checked(PQexecParams(connection_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                              nullptr, nullptr, 0),
                 "query failed");
}

std::int64_t Connection::copy_in(const std::string& copy_sql, std::string_view data) {
  last_sqlstate_.clear();
  Result start(PQexec(connection_, copy_sql.c_str()));
  if (!start.get() || PQresultStatus(start.get()) != PGRES_COPY_IN) throw error_of(connection_, start.get(), "COPY failed");
  // Large buffers go in slices: libpq takes an int length.
  constexpr std::size_t slice = 1 << 20;
  for (std::size_t offset = 0; offset < data.size(); offset += slice) {
    auto part = data.substr(offset, slice);
    if (PQputCopyData(connection_, part.data(), static_cast<int>(part.size())) != 1) {
      throw error_of(connection_, nullptr, "COPY failed");
    }
  }
  if (PQputCopyEnd(connection_, nullptr) != 1) throw error_of(connection_, nullptr, "COPY failed");
  std::int64_t copied = 0;
  std::optional<StoreError> failure;
  // Drain every result, so the connection is ready for the next command.
  while (PGresult* raw = PQgetResult(connection_)) {
    Result result(raw);
    if (PQresultStatus(raw) == PGRES_COMMAND_OK) {
      copied = result.affected();
    } else if (!failure) {
      remember_sqlstate(raw);
      failure = error_of(connection_, raw, "COPY failed");
    }
  }
  if (failure) throw *failure;
  return copied;
}

void Connection::remember_sqlstate(const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
}

bool Connection::in_transaction() const noexcept {
  auto status = PQtransactionStatus(connection_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

Transaction::Transaction(Connection& connection, std::string_view begin) : connection_(connection) {
  connection_.execute(begin);
}

Transaction::~Transaction() {
  if (done_ || !connection_.ok() || !connection_.in_transaction()) return;
  PQclear(PQexec(connection_.handle(), "ROLLBACK"));
}

void Transaction::commit() {
  connection_.execute("COMMIT");
  done_ = true;
}

void append_copy_text(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

CopyBuffer& CopyBuffer::add(std::int64_t value) {
  separate();
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  data_.append(digits, end);
  return *this;
}

CopyBuffer& CopyBuffer::add(std::optional<std::int64_t> value) {
  if (value) return add(*value);
  return add_null();
}

CopyBuffer& CopyBuffer::add_text(std::string_view text) {
  separate();
  append_copy_text(data_, text);
  return *this;
}

CopyBuffer& CopyBuffer::add_text_or_null(std::string_view text) {
  if (text.empty()) return add_null();
  return add_text(text);
}

CopyBuffer& CopyBuffer::add_null() {
  separate();
  data_ += "\\N";
  return *this;
}

void CopyBuffer::end_row() {
  data_ += '\n';
  in_row_ = false;
}

}  // namespace jobtrail::pg
