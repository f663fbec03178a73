#pragma once
/// \file
/// The web console of `jobtrail serve`: read-only HTML pages over the store, every page at a
/// stable URL under /ui/ that an alert or a runbook can link to. No HTTP here: the server
/// decodes the request and writes the reply; the template library stays behind this header.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jobtrail/event.h"

namespace jobtrail {
class Store;
}

namespace jobtrail::console {

/// The prefix every console URL starts with.
inline constexpr std::string_view url_prefix = "/ui";

struct ConsoleOptions {
  /// Reads need the token (a bearer header or a login session) when this is true.
  bool require_token = false;
  /// Whether a token typed into the login form is the server's (constant time, the server's
  /// own comparison, so the rule lives once). Needed when require_token is set.
  std::function<bool(std::string_view)> token_matches;
  /// Most login sessions kept at once; the oldest is forgotten beyond it.
  std::size_t max_sessions = 1000;
};

/// A request the server has decoded.
struct Request {
  std::string method = "GET";  ///< "GET", "HEAD" or "POST"
  std::string path;            ///< percent-decoded, starting with /ui
  std::vector<std::pair<std::string, std::string>> params;  ///< decoded query, in order
  std::string body;            ///< a POSTed form (application/x-www-form-urlencoded)
  std::string cookie;          ///< the Cookie header
  bool bearer_ok = false;      ///< the request carried the server's token as a bearer header
  bool fragment = false;       ///< X-Jobtrail-Fragment: only the page's live part, for refreshes
};

/// What the server sends back.
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "text/html; charset=utf-8";
  /// Security headers (CSP and the like) included on every reply.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// The pages. Thread-safe: the server calls it from its worker threads, each with a Store of
/// its own.
class Console {
 public:
  /// Throws std::invalid_argument when require_token is set without token_matches.
  explicit Console(ConsoleOptions options);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  /// Whether `request` needs the store (everything but assets and the login form): the server
  /// leases one only then.
  bool needs_store(const Request& request) const;
  /// Answers `request`; `store` may be null when needs_store() is false. `now` is the time
  /// ongoing spans are measured to. Never throws for bad input: that is a 400 or 404 page.
  Reply handle(const Request& request, Store* store, Micros now);

  struct Shared;

 private:
  ConsoleOptions options_;
  std::unique_ptr<Shared> shared_;
};

/// Text as HTML content or a quoted attribute value: & < > " ' escaped. The one escaping rule
/// of the console: the templates and the SVG charts both use it.
std::string escape_html(std::string_view text);
/// Every byte but A-Z a-z 0-9 - . _ ~ as %XX, for one path segment or query value of a link.
std::string percent_encode(std::string_view text);

/// The console URL of a job, a trace, an entity or a check (percent-encoded).
std::string job_url(std::string_view job_id);
std::string trace_url(std::string_view correlation_id);
std::string entity_url(std::string_view entity);
std::string check_url(std::string_view check);

}  // namespace jobtrail::console
