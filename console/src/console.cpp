// The console's routes, its login and the headers every reply carries.

#include "jobtrail/console.h"

#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include <fmt/format.h>

#include "pages.h"
#include "render.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::console {
namespace {

constexpr std::string_view session_cookie = "jobtrail_session";
/// How often a live page asks for its data again.
constexpr int live_period_ms = 2000;

/// What every console reply carries. Script only from /ui/assets/ (no inline script, so an
/// event's text that slipped past escaping could still not run); no framing (clickjacking);
/// no sniffing a JSON or text reply into HTML; no Referer with job IDs to a runbook's host.
void add_security_headers(Reply& reply) {
  reply.headers.emplace_back("Content-Security-Policy",
                             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                             "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  reply.headers.emplace_back("X-Frame-Options", "DENY");
  reply.headers.emplace_back("Referrer-Policy", "no-referrer");
}

std::string param(const Request& request, std::string_view key) {
  for (const auto& [name, value] : request.params) {
    if (name == key) return value;
  }
  return {};
}

/// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const std::size_t semicolon = header.find(';');
    std::string_view pair = header.substr(0, semicolon);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
    if (semicolon == std::string_view::npos) break;
    header.remove_prefix(semicolon + 1);
  }
  return {};
}

/// Where a login may send the browser back to: a console page of this server, never another
/// host ("//evil.example" is a host, not a path).
std::string safe_next(const std::string& next) {
  if (next.starts_with("/ui/") && !next.starts_with("//") && next.find('\\') == std::string::npos) return next;
  return "/ui/";
}

Reply html_reply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

Reply login_reply(int status, const std::string& next, const std::string& problem) {
  Data data;
  data.set("next", safe_next(next));
  set_text(data, "problem", problem);
  return html_reply(status, render("login", data));
}

Reply page_reply(const Page& page, const Request& request, Micros now) {
  if (request.fragment) return html_reply(page.status, page.body);
  Data data;
  data.set("title", page.title);
  data.set("body", page.body);
  data.set("live", page.live);
  data.set("live_ms", std::to_string(live_period_ms));
  data.set("live_seconds", std::to_string(live_period_ms / 1000));
  data.set("now", view::format_timestamp(now));
  return html_reply(page.status, render("layout", data));
}

Reply asset_reply(std::string_view name) {
  Reply reply;
  const std::string_view bytes = embedded(name);
  const bool known = (name.ends_with(".css") || name.ends_with(".js")) && !bytes.empty();
  if (!known) {
    reply.status = 404;
    reply.content_type = "text/plain; charset=utf-8";
    reply.body = "no such asset\n";
    return reply;
  }
  reply.content_type = name.ends_with(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
  reply.body = std::string(bytes);
  // Built into this binary: fresh for as long as it runs; a restart may bring another one.
  reply.headers.emplace_back("Cache-Control", "no-cache");
  return reply;
}

/// The request's URL again (path and query), for the login form to come back to.
std::string url_of(const Request& request) {
  const std::string& url = request.path;
  std::string encoded;
  // Each path segment was decoded by the server; encode it again, keeping the slashes.
  std::size_t start = 0;
  while (start <= url.size()) {
    const std::size_t slash = url.find('/', start);
    encoded += percent_encode(url.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    encoded += '/';
    start = slash + 1;
  }
  std::string query;
  for (const auto& [key, value] : request.params) {
    query += (query.empty() ? "?" : "&") + percent_encode(key) + "=" + percent_encode(value);
  }
  return encoded + query;
}

}  // namespace

/// What the worker threads share: the login sessions, random IDs handed out as an HttpOnly
/// cookie, held in memory only (a restart of serve signs everyone out). The token itself never goes into a cookie.
struct Console::Shared {
  std::mutex mutex;
  std::unordered_set<std::string> ids;
  std::deque<std::string> order;  // oldest first, to forget beyond max_sessions
  std::random_device random;      // the kernel's generator (getrandom), not a seeded PRNG

  std::string open(std::size_t max_sessions) {
    std::lock_guard lock(mutex);
    std::string id;
    for (int i = 0; i < 8; ++i) id += fmt::format("{:08x}", static_cast<std::uint32_t>(random()));
    ids.insert(id);
    order.push_back(id);
    while (order.size() > max_sessions) {
      ids.erase(order.front());
      order.pop_front();
    }
    return id;
  }

  bool valid(const std::string& id) {
    if (id.empty()) return false;
    std::lock_guard lock(mutex);
    return ids.count(id) > 0;
  }
};

Console::Console(ConsoleOptions options) : options_(std::move(options)), shared_(std::make_unique<Shared>()) {
  if (options_.require_token && !options_.token_matches) {
    throw std::invalid_argument("console: require_token needs token_matches");
  }
}

Console::~Console() = default;

bool Console::needs_store(const Request& request) const {
  return !request.path.starts_with("/ui/assets/") && request.path != "/ui/login" && request.path != "/ui";
}

Reply Console::handle(const Request& request, Store* store, Micros now) {
  Reply reply = [&]() -> Reply {
    const std::string& path = request.path;
    if (path.starts_with("/ui/assets/")) return asset_reply(std::string_view(path).substr(11));
    if (path == "/ui") {
      Reply moved = html_reply(308, "");
      moved.headers.emplace_back("Location", "/ui/");
      return moved;
    }
    if (path == "/ui/login") {
      if (request.method != "POST") return login_reply(200, param(request, "next"), "");
      if (!options_.require_token) return login_reply(400, param(request, "next"), "This server needs no token.");
      if (!options_.token_matches(param(request, "token"))) {
        return login_reply(401, param(request, "next"), "That is not the server's token.");
      }
      Reply signed_in = html_reply(303, "");
      signed_in.headers.emplace_back("Location", safe_next(param(request, "next")));
      signed_in.headers.emplace_back(
          "Set-Cookie", fmt::format("{}={}; Path=/ui; HttpOnly; SameSite=Strict", session_cookie,
                                    shared_->open(options_.max_sessions)));
      return signed_in;
    }
    if (options_.require_token && !request.bearer_ok &&
        !shared_->valid(cookie_value(request.cookie, session_cookie))) {
      if (request.fragment) return html_reply(401, "");
      return login_reply(401, url_of(request), "");
    }
    if (request.method != "GET" && request.method != "HEAD") {
      Reply refused = page_reply(problem_page(405, "Read-only", "The console only reads."), request, now);
      refused.headers.emplace_back("Allow", "GET, HEAD");
      return refused;
    }
    if (store == nullptr) throw std::logic_error("console: a page needs the store");
    const auto after = [&](std::string_view prefix) { return path.substr(prefix.size()); };
    Page page;
    if (path == "/ui/") {
      page = overview_page(*store, request.params, now);
    } else if (path == "/ui/jobs" || path == "/ui/jobs/") {
      page = search_page(*store, request.params, now);
    } else if (path.starts_with("/ui/jobs/")) {
      page = job_page(*store, after("/ui/jobs/"), now);
    } else if (path == "/ui/job") {
      page = job_page(*store, param(request, "id"), now);
    } else if (path.starts_with("/ui/traces/") && path.size() > 11) {
      page = trace_page(*store, after("/ui/traces/"), now);
    } else if (path == "/ui/trace") {
      page = trace_page(*store, param(request, "id"), now);
    } else if (path.starts_with("/ui/entities/") && path.size() > 13) {
      page = search_page(*store, request.params, now, after("/ui/entities/"));
    } else if (path == "/ui/impact" || path == "/ui/impact/") {
      page = impact_page(*store, request.params, now);
    } else if (path == "/ui/checks" || path == "/ui/checks/") {
      page = checks_page(*store);
    } else if (path.starts_with("/ui/checks/")) {
      page = check_page(*store, after("/ui/checks/"));
    } else {
      page = problem_page(404, "No such page", fmt::format("The console has no page at '{}'.", path));
    }
    return page_reply(page, request, now);
  }();
  add_security_headers(reply);
  return reply;
}

}  // namespace jobtrail::console
