// The console without HTTP: escaping, links, and pages rendered from a real SQLite store.

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "jobtrail/console.h"
#include "jobtrail/store.h"
#include "pages.h"
#include "temp_dir.h"

using namespace jobtrail;
using namespace jobtrail::console;

namespace {

Event event(const std::string& job_id, State state, Micros at, int attempt = 1) {
  Event result;
  result.job_id = job_id;
  result.state = state;
  result.at = at;
  result.attempt = attempt;
  return result;
}

Reply get(Console& console, Store* store, const std::string& path, Micros now) {
  Request request;
  request.path = path;
  return console.handle(request, store, now);
}

constexpr Micros t0 = 1'800'000'000'000'000;
const std::string hostile = "<script>alert('x')</script>\"&";
const std::string hostile_escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;";


std::size_t count(const std::string& text, const std::string& part) {
  std::size_t found = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++found;
  return found;
}

/// One bar of the waterfall: where a "M x y h width v 11 h -width z" of a <path> draws it.
struct Bar {
  double x = 0;
  int y = 0;
  double width = 0;
  bool operator==(const Bar&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Bar& bar) {
  return out << "{" << bar.x << ", " << bar.y << ", " << bar.width << "}";
}

/// The bars of one kind, read back from the d= of each <path class="KIND">, in order; a
/// segment that is not a closed 11-px-high rectangle fails the test.
std::vector<Bar> bars_of(const std::string& svg, const std::string& kind) {
  std::vector<Bar> bars;
  const std::string start = "<path class=\"" + kind + "\" d=\"";
  for (std::size_t at = svg.find(start); at != std::string::npos; at = svg.find(start, at + 1)) {
    std::istringstream d(svg.substr(at + start.size(), svg.find('"', at + start.size()) - at - start.size()));
    char m = 0, h = 0, v = 0, back = 0, z = 0;
    Bar bar;
    int height = 0;
    double width_back = 0;
    while (d >> m >> bar.x >> bar.y >> h >> bar.width >> v >> height >> back >> width_back >> z) {
      CHECK(std::string{m, h, v, back, z} == "Mhvhz");
      CHECK(height == 11);
      CHECK(width_back == -bar.width);
      bars.push_back(bar);
    }
    CHECK(d.eof());
  }
  return bars;
}
}  // namespace

TEST_CASE("escape_html escapes every character that could leave text or an attribute", "[console]") {
  CHECK(escape_html(hostile) == hostile_escaped);
  CHECK(escape_html("plain text: 100% é") == "plain text: 100% é");
  CHECK(escape_html(std::string("a\0b", 3)) == "a&#xFFFD;b");
}

TEST_CASE("links percent-encode IDs, and dot segments go to the query", "[console]") {
  CHECK(job_url("welcome-email-42") == "/ui/jobs/welcome-email-42");
  CHECK(job_url("a/b?c#d e") == "/ui/jobs/a%2Fb%3Fc%23d%20e");
  CHECK(job_url("\"><script>") == "/ui/jobs/%22%3E%3Cscript%3E");
  CHECK(job_url("..") == "/ui/job?id=..");
  CHECK(job_url(".") == "/ui/job?id=.");
  CHECK(trace_url("..") == "/ui/trace?id=..");
  CHECK(entity_url("user:42") == "/ui/entities/user%3A42");
  CHECK(check_url("double charges") == "/ui/checks/double%20charges");
  CHECK(percent_encode("\xC3\xA9") == "%C3%A9");
}

TEST_CASE("pages show hostile text escaped, in text and in links", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  Event enqueued = event(hostile, State::enqueued, t0);
  enqueued.job = "Hostile<Job>";
  enqueued.correlation_id = hostile;
  enqueued.entities = {"user:<b>1</b>"};
  Event dead = event(hostile, State::dead, t0 + 2000);
  dead.error = {"<i>Err</i>", hostile, hostile};
  store->append({enqueued, event(hostile, State::started, t0 + 1000), dead});
  Console console({});

  for (const std::string& path : {job_url(hostile), trace_url(hostile), std::string("/ui/jobs"), std::string("/ui/"),
                                  std::string("/ui/entities/user:<b>1</b>")}) {
    Request request;
    request.path = path;
    // The server hands the console decoded paths.
    if (path.starts_with("/ui/jobs/")) request.path = "/ui/jobs/" + hostile;
    if (path.starts_with("/ui/traces/")) request.path = "/ui/traces/" + hostile;
    const Reply reply = console.handle(request, store.get(), t0 + 5000);
    INFO(path);
    CHECK(reply.status == 200);
    CHECK(reply.body.find("<script>alert") == std::string::npos);
    CHECK(reply.body.find("<i>Err") == std::string::npos);
    CHECK(reply.body.find("<b>1") == std::string::npos);
  }
  const Reply job = get(console, store.get(), "/ui/jobs/" + hostile, t0 + 5000);
  CHECK(job.body.find(hostile_escaped) != std::string::npos);
  CHECK(job.body.find("href=\"" + escape_html(trace_url(hostile)) + "\"") != std::string::npos);
  CHECK(job.body.find("href=\"/ui/entities/user%3A%3Cb%3E1%3C%2Fb%3E\"") != std::string::npos);
  // The only scripts of a page are the console's own.
  std::size_t scripts = 0;
  for (std::size_t at = job.body.find("<script"); at != std::string::npos; at = job.body.find("<script", at + 1)) ++scripts;
  CHECK(scripts == 1);
  CHECK(job.body.find("<script src=\"/ui/assets/console.js\" defer></script>") != std::string::npos);
}

TEST_CASE("every reply carries the security headers", "[console]") {
  Console console({});
  const Reply css = get(console, nullptr, "/ui/assets/console.css", t0);
  CHECK(css.status == 200);
  CHECK(css.content_type == "text/css; charset=utf-8");
  bool csp = false;
  bool nosniff = false;
  for (const auto& [name, value] : css.headers) {
    csp = csp || (name == "Content-Security-Policy" && value.find("script-src 'self'") != std::string::npos &&
                  value.find("frame-ancestors 'none'") != std::string::npos);
    nosniff = nosniff || (name == "X-Content-Type-Options" && value == "nosniff");
  }
  CHECK(csp);
  CHECK(nosniff);
  CHECK(get(console, nullptr, "/ui/assets/missing.js", t0).status == 404);
  CHECK(get(console, nullptr, "/ui/assets/layout.mustache", t0).status == 404);  // templates are not assets
}

TEST_CASE("with a token, pages need the bearer or a login session", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  ConsoleOptions options;
  options.require_token = true;
  options.token_matches = [](std::string_view given) { return given == "sesame"; };
  Console console(options);

  Reply refused = get(console, store.get(), "/ui/jobs", t0);
  CHECK(refused.status == 401);
  CHECK(refused.body.find("name=\"token\"") != std::string::npos);

  Request bearer;
  bearer.path = "/ui/jobs";
  bearer.bearer_ok = true;
  CHECK(console.handle(bearer, store.get(), t0).status == 200);

  Request login;
  login.method = "POST";
  login.path = "/ui/login";
  login.params = {{"token", "wrong"}, {"next", "/ui/jobs"}};
  CHECK(console.handle(login, nullptr, t0).status == 401);
  login.params = {{"token", "sesame"}, {"next", "//evil.example/"}};
  const Reply signed_in = console.handle(login, nullptr, t0);
  CHECK(signed_in.status == 303);
  std::string cookie;
  std::string location;
  for (const auto& [name, value] : signed_in.headers) {
    if (name == "Set-Cookie") cookie = value;
    if (name == "Location") location = value;
  }
  CHECK(location == "/ui/");  // never to another host
  REQUIRE(cookie.starts_with("jobtrail_session="));
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("sesame") == std::string::npos);  // a session ID, not the token

  Request with_cookie;
  with_cookie.path = "/ui/jobs";
  with_cookie.cookie = "other=1; " + cookie.substr(0, cookie.find(';'));
  CHECK(console.handle(with_cookie, store.get(), t0).status == 200);
  with_cookie.cookie = "jobtrail_session=0123456789abcdef";
  CHECK(console.handle(with_cookie, store.get(), t0).status == 401);
}

TEST_CASE("the job page shows every attempt, its errors, and links to its relatives", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  Event parent = event("invoice-1", State::enqueued, t0);
  parent.correlation_id = "trace-1";
  Event child = event("payment-1", State::enqueued, t0 + 10);
  child.correlation_id = "trace-1";
  child.parent_job_id = "invoice-1";
  child.entities = {"customer:2"};
  Event failed = event("payment-1", State::failed, t0 + 30);
  failed.error = {"Stripe::APIConnectionError", "timed out", "app/payment.rb:12"};
  store->append({parent, child, event("payment-1", State::started, t0 + 20), failed,
                 event("payment-1", State::enqueued, t0 + 40, 2), event("payment-1", State::started, t0 + 50, 2),
                 event("payment-1", State::succeeded, t0 + 60, 2)});
  Console console({});
  const Reply page = get(console, store.get(), "/ui/jobs/payment-1", t0 + 100);
  CHECK(page.status == 200);
  CHECK(page.body.find("Stripe::APIConnectionError") != std::string::npos);
  CHECK(page.body.find("app/payment.rb:12") != std::string::npos);
  CHECK(page.body.find("href=\"/ui/jobs/invoice-1\"") != std::string::npos);
  CHECK(page.body.find("href=\"/ui/traces/trace-1\"") != std::string::npos);
  CHECK(page.body.find("href=\"/ui/entities/customer%3A2\"") != std::string::npos);
  CHECK(page.body.find("data-live") == std::string::npos);  // finished: nothing to follow

  const Reply parent_page = get(console, store.get(), "/ui/jobs/invoice-1", t0 + 100);
  CHECK(parent_page.body.find("href=\"/ui/jobs/payment-1\"") != std::string::npos);  // its child
  CHECK(parent_page.body.find("data-live=") != std::string::npos);                   // still waiting

  Request fragment;
  fragment.path = "/ui/jobs/invoice-1";
  fragment.fragment = true;
  const Reply part = console.handle(fragment, store.get(), t0 + 100);
  CHECK(part.body.find("<html") == std::string::npos);
  CHECK(part.body.find("invoice-1") != std::string::npos);

  CHECK(get(console, store.get(), "/ui/jobs/nope", t0).status == 404);
  CHECK(get(console, store.get(), "/ui/no-such-page", t0).status == 404);
}

TEST_CASE("the waterfall draws earlier attempts, waiting and running on one axis", "[console]") {
  JobRecord retried;
  retried.job_id = "payment-1";
  retried.state = State::succeeded;
  retried.attempts = 2;
  retried.first_event_at = t0;
  retried.enqueued_at = t0 + 400;
  retried.started_at = t0 + 500;
  retried.finished_at = t0 + 1000;
  retried.last_event_at = t0 + 1000;
  JobRecord running;
  running.job_id = "<report>";
  running.state = State::started;
  running.attempts = 1;
  running.first_event_at = t0;
  running.enqueued_at = t0;
  running.started_at = t0 + 100;
  running.last_event_at = t0 + 100;
  const std::string svg = waterfall_svg({&retried, &running}, t0 + 2000);
  // The axis is 2,000 µs over 900 px from x = 280; payment-1's row at y = 22, <report>'s at 38.
  CHECK(bars_of(svg, "retry") == std::vector<Bar>{{280.0, 22, 180.0}});
  CHECK(bars_of(svg, "wait") == std::vector<Bar>{{460.0, 22, 45.0}, {280.0, 38, 45.0}});
  CHECK(bars_of(svg, "run") == std::vector<Bar>{{505.0, 22, 225.0}});  // ran 500 µs of the 2,000
  CHECK(bars_of(svg, "ongoing") == std::vector<Bar>{{325.0, 38, 855.0}});  // to now
  CHECK(bars_of(svg, "failed").empty());
  CHECK(count(svg, "<svg ") == 1);
  // Each row links its job, and its title tells its bars in words.
  CHECK(svg.find(R"(<a class="job-row" href="/ui/jobs/payment-1"><title>payment-1: 1 earlier attempts, 400µs; )"
                 R"(waited 100µs; succeeded 500µs (attempt 2)</title>)") != std::string::npos);
  CHECK(svg.find("<report>") == std::string::npos);
  CHECK(svg.find(R"(href="/ui/jobs/%3Creport%3E"><title>&lt;report&gt;: waited 100µs; started 1ms+ (attempt 1)</title>)") !=
        std::string::npos);
  CHECK(svg.find(">&lt;report&gt;</text>") != std::string::npos);
}

TEST_CASE("a long trace's waterfall and tree come in blocks of rows_per_block jobs", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  const std::size_t jobs = 2 * rows_per_block + 50;
  std::vector<Event> events;
  for (std::size_t i = 0; i < jobs; ++i) {
    Event enqueued = event("job-" + std::to_string(i), State::enqueued, t0 + static_cast<Micros>(i) * 10);
    enqueued.correlation_id = "long";
    events.push_back(enqueued);
    Event started = enqueued;
    started.state = State::started;
    started.at += 10;
    events.push_back(started);
    Event succeeded = started;
    succeeded.state = State::succeeded;
    succeeded.at += 10;
    events.push_back(succeeded);
  }
  store->append(events);
  Console console({});
  const Reply page = get(console, store.get(), "/ui/traces/long", t0 + 100000);
  REQUIRE(page.status == 200);
  CHECK(count(page.body, R"(<div class="waterfall-block">)") == 3);
  CHECK(count(page.body, R"(<div class="tree-block"><table class="grid tree blocks">)") == 3);
  CHECK(count(page.body, R"(<a class="job-row" )") == jobs);
  CHECK(count(page.body, "<tr><td class=\"tree-cell\">") == jobs);

  // Every job's bars, in the tree's order: the first block under the axis (y = 22), the
  // others from y = 0; job i ran from t0 + 10i + 10 for 10 µs of the 4,510 µs axis.
  std::vector<Bar> runs;
  std::size_t from = 0;
  for (int block = 0; block < 3; ++block) {
    const std::size_t begin = page.body.find(R"(<div class="waterfall-block">)", from);
    from = page.body.find("</div>", begin);
    const std::vector<Bar> bars = bars_of(page.body.substr(begin, from - begin), "run");
    CHECK(bars.size() == (block < 2 ? rows_per_block : 50));
    runs.insert(runs.end(), bars.begin(), bars.end());
  }
  REQUIRE(runs.size() == jobs);
  const double span = static_cast<double>(jobs - 1) * 10 + 20;
  for (std::size_t i = 0; i < jobs; ++i) {
    const std::size_t in_block = i % rows_per_block;
    const Bar expected{std::round((280 + static_cast<double>(i * 10 + 10) * 900 / span) * 10) / 10,
                       (i < rows_per_block ? 22 : 0) + static_cast<int>(in_block) * 16,
                       std::round((10 * 900 / span) * 10) / 10};
    INFO("job-" << i);
    CHECK(runs[i].x == Approx(expected.x).margin(0.051));
    CHECK(runs[i].y == expected.y);
    CHECK(runs[i].width == Approx(expected.width).margin(0.051));
  }

  // A short trace is one block of each, its table laid out as before (no fixed layout).
  Event alone = event("alone", State::enqueued, t0);
  alone.correlation_id = "short";
  store->append({alone});
  const Reply short_page = get(console, store.get(), "/ui/traces/short", t0 + 10);
  REQUIRE(short_page.status == 200);
  CHECK(count(short_page.body, R"(<div class="waterfall-block">)") == 1);
  CHECK(count(short_page.body, R"(<div class="tree-block"><table class="grid tree">)") == 1);
  CHECK(count(short_page.body, "tree blocks") == 0);
}

TEST_CASE("search refuses a bad filter with a reason, and its next page keeps the filters", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  std::vector<Event> events;
  for (int i = 0; i < 5; ++i) events.push_back(event("job-" + std::to_string(i), State::enqueued, t0 + i * 1000));
  store->append(events);
  Console console({});
  Request request;
  request.path = "/ui/jobs";
  request.params = {{"state", "done"}};
  const Reply bad = console.handle(request, store.get(), t0 + 10000);
  CHECK(bad.status == 400);
  CHECK(bad.body.find("&#39;done&#39;") != std::string::npos);

  request.params = {{"state", ""}, {"limit", "2"}};
  const Reply first = console.handle(request, store.get(), t0 + 10000);
  CHECK(first.status == 200);
  CHECK(first.body.find(">job-4<") != std::string::npos);
  CHECK(first.body.find(">job-3<") != std::string::npos);
  CHECK(first.body.find(">job-2<") == std::string::npos);
  const std::size_t next = first.body.find("rel=\"next\" href=\"");
  REQUIRE(next != std::string::npos);
  CHECK(first.body.find("?limit=2&amp;cursor=", next) == next + 17 + 8);
}

namespace {
/// `text` with its %XX escapes decoded ('+' is not a space here: the console encodes spaces as %20).
std::string percent_decode(const std::string& text) {
  std::string decoded;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      decoded += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

/// The request a link of a page makes: its href read back (HTML-unescaped, split at ? and &,
/// each part percent-decoded), as a browser would send it to the server, which decodes it.
Request request_of(const std::string& href) {
  std::string url;
  for (std::size_t i = 0; i < href.size(); ++i) {
    if (href.compare(i, 5, "&amp;") == 0) {
      url += '&';
      i += 4;
    } else {
      url += href[i];
    }
  }
  Request request;
  const std::size_t question = url.find('?');
  request.path = percent_decode(url.substr(0, question));
  if (question == std::string::npos) return request;
  std::string query = url.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string pair = query.substr(0, amp);
    const std::size_t equals = pair.find('=');
    request.params.emplace_back(percent_decode(pair.substr(0, equals)),
                                equals == std::string::npos ? "" : percent_decode(pair.substr(equals + 1)));
    query = amp == std::string::npos ? "" : query.substr(amp + 1);
  }
  return request;
}

/// The href of the first link with `rel="next"` in `html`, or "".
std::string next_href(const std::string& html) {
  const std::string start = "rel=\"next\" href=\"";
  const std::size_t at = html.find(start);
  if (at == std::string::npos) return "";
  return html.substr(at + start.size(), html.find('"', at + start.size()) - at - start.size());
}

/// The job IDs a page's job table links, in order.
std::vector<std::string> listed_jobs(const std::string& html) {
  std::vector<std::string> ids;
  const std::string start = "<tr><td><a href=\"/ui/jobs/";
  for (std::size_t at = html.find(start); at != std::string::npos; at = html.find(start, at + 1)) {
    const std::size_t text = html.find('>', at + start.size()) + 1;
    ids.push_back(html.substr(text, html.find('<', text) - text));
  }
  return ids;
}
}  // namespace

TEST_CASE("search pages by the store's cursor: jobs sharing a first-seen time are neither skipped nor repeated",
          "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  // 11 jobs, 8 of them first seen at the same microsecond, some tagged with one entity.
  std::vector<Event> events;
  for (int i = 0; i < 11; ++i) {
    Event enqueued = event("job-" + std::to_string(i), State::enqueued, i < 8 ? t0 : t0 + i * 1000);
    if (i % 2 == 0) enqueued.entities = {"customer:2"};
    events.push_back(enqueued);
  }
  store->append(events);
  Console console({});

  const auto walk = [&](Request request, std::size_t expected_pages) {
    std::vector<std::string> seen;
    std::vector<std::string> counts;
    for (std::size_t pages = 0; pages < 20; ++pages) {
      const Reply reply = console.handle(request, store.get(), t0 + 100000);
      REQUIRE(reply.status == 200);
      for (const std::string& id : listed_jobs(reply.body)) seen.push_back(id);
      const std::size_t shown = reply.body.find("showing ");
      REQUIRE(shown != std::string::npos);
      counts.push_back(reply.body.substr(shown, reply.body.find('<', shown) - shown));
      const std::string href = next_href(reply.body);
      if (href.empty()) break;
      CHECK(href.find("until=") == std::string::npos);
      request = request_of(href);
      // The cursor `ls --cursor` takes: the page's URL names the same jobs as the CLI.
      CHECK(parse_cursor(request.params.back().second).has_value());
      CHECK(request.params.back().first == "cursor");
    }
    CHECK(counts.size() == expected_pages);
    return std::pair(seen, counts);
  };

  Request search;
  search.path = "/ui/jobs";
  search.params = {{"state", ""}, {"limit", "3"}};
  const auto [seen, counts] = walk(search, 4);
  std::vector<std::string> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // none twice
  CHECK(seen.size() == 11);                                                 // none skipped
  CHECK(counts == std::vector<std::string>{"showing 3 of 11 jobs", "showing 3 of 8 jobs from this page on",
                                           "showing 3 of 5 jobs from this page on",
                                           "showing 2 of 2 jobs from this page on"});

  // The entity page is the same paging.
  Request entity;
  entity.path = "/ui/entities/customer:2";
  entity.params = {{"limit", "2"}};
  const auto [entity_seen, entity_counts] = walk(entity, 3);
  CHECK(entity_seen.size() == 6);
  CHECK(std::set<std::string>(entity_seen.begin(), entity_seen.end()).size() == 6);
  CHECK(entity_counts.front() == "showing 2 of 6 jobs");
}

TEST_CASE("search's count is bounded, and a bad cursor is a 400 page that says why", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  std::vector<Event> events;
  const int jobs = static_cast<int>(page_count_limit) + 20;
  for (int i = 0; i < jobs; ++i) events.push_back(event("job-" + std::to_string(i), State::enqueued, t0 + i));
  store->append(events);
  Console console({});
  Request request;
  request.path = "/ui/jobs";
  request.params = {{"limit", "10"}};
  const Reply first = console.handle(request, store.get(), t0 + 100000);
  CHECK(first.body.find("showing 10 of more than " + std::to_string(page_count_limit + 10) + " jobs<") != std::string::npos);

  for (const std::string& cursor : {hostile, to_cursor({t0, 1}).substr(1), std::string(5000, 'A')}) {
    request.params = {{"cursor", cursor}};
    const Reply bad = console.handle(request, store.get(), t0 + 100000);
    INFO(cursor.substr(0, 40));
    CHECK(bad.status == 400);
    CHECK(bad.body.find("<script>alert") == std::string::npos);
    CHECK(bad.body.find("not a page link this console made") != std::string::npos);
    CHECK(bad.body.find("href=\"/ui/jobs\"") != std::string::npos);  // the first page, offered
  }
  request.path = "/ui/entities/customer:2";
  const Reply bad_entity = console.handle(request, store.get(), t0 + 100000);
  CHECK(bad_entity.status == 400);
  CHECK(bad_entity.body.find("href=\"/ui/entities/customer%3A2\"") != std::string::npos);
}

namespace {
/// Every href="..." of `html`, as written (HTML-escaped).
std::vector<std::string> hrefs_of(const std::string& html) {
  std::vector<std::string> links;
  const std::string start = "href=\"";
  for (std::size_t at = html.find(start); at != std::string::npos; at = html.find(start, at + 1)) {
    links.push_back(html.substr(at + start.size(), html.find('"', at + start.size()) - at - start.size()));
  }
  return links;
}
}  // namespace

TEST_CASE("the blast-radius page lists the entities the matching jobs touched, each and its jobs a link",
          "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  const auto failed_job = [](const std::string& id, Micros at, std::vector<std::string> entities) {
    Event enqueued = event(id, State::enqueued, at);
    enqueued.job = "PaymentJob";
    enqueued.queue = "payments";
    enqueued.entities = std::move(entities);
    Event failed = event(id, State::failed, at + 10);
    failed.error = {"Boom", hostile, ""};
    return std::vector<Event>{enqueued, event(id, State::started, at + 5), failed};
  };
  std::vector<Event> events;
  for (auto part : {failed_job("payment-1", t0, {"customer:2", "invoice:9"}),
                    failed_job("payment-2", t0 + 100, {"customer:2"}),
                    failed_job(hostile, t0 + 200, {"user:<b>1</b>"}), failed_job("untagged", t0 + 300, {})}) {
    events.insert(events.end(), part.begin(), part.end());
  }
  Event other = event("welcome-1", State::enqueued, t0 + 400);
  other.job = "WelcomeJob";
  other.entities = {"user:7"};
  events.push_back(other);
  store->append(events);
  Console console({});
  const Micros now = t0 + 1000;

  Request request;
  request.path = "/ui/impact";
  request.params = {{"job", "PaymentJob"}, {"state", "failed,dead"}, {"type", ""}, {"since", ""}, {"until", ""}};
  const Reply page = console.handle(request, store.get(), now);
  REQUIRE(page.status == 200);
  CHECK(page.body.find("PaymentJob jobs now failed or dead, first seen since ") != std::string::npos);
  CHECK(page.body.find("4 jobs matched, 3 tagged with entities, 3 distinct entities (customer: 1, invoice: 1, user: 1)") !=
        std::string::npos);
  CHECK(page.body.find("<a class=\"entity\" href=\"/ui/entities/customer%3A2\">customer:2</a></td><td class=\"n\">2<") !=
        std::string::npos);
  CHECK(page.body.find("<a href=\"/ui/jobs/payment-2\">payment-2</a> <a href=\"/ui/jobs/payment-1\">payment-1</a>") !=
        std::string::npos);
  CHECK(page.body.find("welcome-1") == std::string::npos);  // another class
  CHECK(page.body.find("showing ") == std::string::npos);   // every entity is listed
  // Hostile IDs are text, and their links percent-encoded.
  CHECK(page.body.find("<script>alert") == std::string::npos);
  CHECK(page.body.find("<b>1") == std::string::npos);
  CHECK(page.body.find(">user:&lt;b&gt;1&lt;/b&gt;</a>") != std::string::npos);
  CHECK(page.body.find("href=\"" + escape_html(job_url(hostile)) + "\">" + hostile_escaped + "</a>") != std::string::npos);

  // Every link of the page answers, the entities' and the jobs' pages included.
  const std::vector<std::string> links = hrefs_of(page.body);
  CHECK(links.size() > 8);
  for (const std::string& href : links) {
    if (href.starts_with("/ui/assets/")) continue;
    INFO(href);
    REQUIRE(href.starts_with("/ui/"));
    CHECK(console.handle(request_of(href), store.get(), now).status == 200);
  }

  // Fewer entities than match: it says so and links them all.
  request.params = {{"limit", "1"}};
  const Reply partial = console.handle(request, store.get(), now);
  CHECK(partial.body.find("showing 1 of 4 entities") != std::string::npos);
  const std::size_t all = partial.body.find("\">show them all</a>");
  REQUIRE(all != std::string::npos);
  const std::string all_href = partial.body.substr(partial.body.rfind("href=\"", all) + 6, all - partial.body.rfind("href=\"", all) - 6);
  CHECK(all_href == "/ui/impact?limit=4");
  CHECK(count(console.handle(request_of(all_href), store.get(), now).body, "<a class=\"entity\"") == 4);

  // A bad filter is a 400 that says why, the value escaped.
  request.params = {{"state", hostile}};
  const Reply bad = console.handle(request, store.get(), now);
  CHECK(bad.status == 400);
  CHECK(bad.body.find("<script>alert") == std::string::npos);
  CHECK(bad.body.find(hostile_escaped) != std::string::npos);
  request.params = {{"since", "1h"}, {"until", "2h"}};
  CHECK(console.handle(request, store.get(), now).status == 400);
  request.params = {{"limit", "1001"}};  // a page is for a person: at most 1,000 entities
  CHECK(console.handle(request, store.get(), now).status == 400);
  std::vector<Event> many;
  for (int i = 0; i < 1001; ++i) {
    Event tagged = event("many-" + std::to_string(i), State::enqueued, t0 + 500);
    tagged.job = "ManyJob";
    tagged.entities = {"item:" + std::to_string(i)};
    many.push_back(tagged);
  }
  store->append(many);
  request.params = {{"job", "ManyJob"}, {"limit", "1"}};
  const Reply cut = console.handle(request, store.get(), now);
  CHECK(cut.body.find("showing 1 of 1001 entities · <a href=\"/ui/impact?job=ManyJob&amp;limit=1000\">show the first 1000</a>") !=
        std::string::npos);

  // A page reads the tags of the newest 10,000 jobs unless asked for all; the count is exact.
  std::vector<Event> busy;
  for (int i = 0; i < 10001; ++i) {
    Event tagged = event("busy-" + std::to_string(i), State::enqueued, t0 + 600 + i);
    tagged.job = "BusyJob";
    tagged.entities = {i == 0 ? "account:oldest" : "account:" + std::to_string(i % 3)};
    busy.push_back(tagged);
  }
  store->append(busy);
  request.params = {{"job", "BusyJob"}};
  const Reply bounded = console.handle(request, store.get(), now);
  CHECK(bounded.body.find("10001 jobs matched; of the newest 10000 read, 10000 tagged with entities, 3 distinct entities "
                          "(account: 3) · <a href=\"/ui/impact?job=BusyJob&amp;max_jobs=0\">read all 10001 jobs</a>") !=
        std::string::npos);
  CHECK(bounded.body.find("account:oldest") == std::string::npos);
  request.params = {{"job", "BusyJob"}, {"max_jobs", "0"}};
  const Reply every = console.handle(request, store.get(), now);
  CHECK(every.body.find("10001 jobs matched, 10001 tagged with entities, 4 distinct entities (account: 4)</p>") !=
        std::string::npos);
  CHECK(every.body.find(">account:oldest</a>") != std::string::npos);
  request.params = {{"job", "BusyJob"}, {"max_jobs", "2"}};
  CHECK(console.handle(request, store.get(), now).body.find("10001 jobs matched; of the newest 2 read, 2 tagged") !=
        std::string::npos);

  // The overview and the search link to it, the search with its filters.
  CHECK(get(console, store.get(), "/ui/", now).body.find("href=\"/ui/impact?state=failed%2Cdead\"") != std::string::npos);
  Request search;
  search.path = "/ui/jobs";
  search.params = {{"state", "failed"}, {"job", "PaymentJob"}, {"queue", "payments"}, {"since", "1h"}};
  CHECK(console.handle(search, store.get(), now).body.find(
            "href=\"/ui/impact?job=PaymentJob&amp;state=failed&amp;since=1h\">blast radius of these filters") !=
        std::string::npos);
}

TEST_CASE("the overview's chart counts the jobs first seen in each slice, finished and failed, from the store's tally",
          "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  const Micros minute = 60'000'000;
  const Micros now = t0 + 2 * minute;  // t0 starts a tally bucket: the window ends with it
  auto of = [](Event e, const std::string& job) {
    e.job = job;
    return e;
  };
  store->append({of(event("m1", State::succeeded, now - 1 * minute), "Mail"),
                 of(event("m2", State::failed, now - 1 * minute), "Mail"),
                 of(event("m3", State::succeeded, now - 30 * minute), "Mail"),
                 of(event("m4", State::succeeded, now - 120 * minute), "Mail"),  // before the window
                 of(event("m5", State::started, now - 1 * minute), "Mail"),      // not finished
                 of(event("b1", State::started, now - 1 * minute), "Bill")});    // nothing finished
  Console console({});
  auto overview = [&] {
    Request request;
    request.path = "/ui/";
    request.params = {{"window", "1h"}};
    return console.handle(request, store.get(), now);
  };
  const Reply reply = overview();
  REQUIRE(reply.status == 200);
  CHECK(reply.body.find("last 1h") != std::string::npos);
  CHECK(reply.body.find("12 slices of 5m") != std::string::npos);
  CHECK(reply.body.find("Mail</a> · 3 finished · 33.3% failed") != std::string::npos);
  CHECK(reply.body.find("Bill</a> ·") == std::string::npos);
  // The last slice (the bucket `now` is in) holds m1 and m2, the one 30 minutes back m3.
  CHECK(count(reply.body, ": 2 finished, 1 failed or dead") == 1);
  CHECK(count(reply.body, ": 1 finished, 0 failed or dead") == 1);
  CHECK(count(reply.body, ": 0 finished, 0 failed or dead") == 10);
  // A job that finishes later moves from not counted to counted.
  store->append({of(event("m5", State::dead, now), "Mail")});
  CHECK(overview().body.find("Mail</a> · 4 finished · 50.0% failed") != std::string::npos);
}

TEST_CASE("a store older than the kept counts, read as it is, gets an overview without its chart, saying why",
          "[console]") {
  testing::TempDir dir;
  const std::string path = dir.file("jobs.db");
  {
    auto store = open_store(path);
    Event done = event("m1", State::succeeded, t0 - 60'000'000);
    done.job = "Mail";
    store->append({done});
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "DROP TABLE job_tally; ALTER TABLE check_violation DROP COLUMN entity; PRAGMA user_version = 4",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  OpenOptions read_only;
  read_only.read_only = true;
  auto store = open_store(path, read_only);
  Console console({});
  const Reply reply = get(console, store.get(), "/ui/", t0);
  CHECK(reply.status == 200);
  CHECK(reply.body.find("No chart: sqlite:" + path + " has schema version 4, which does not keep the job counts") !=
        std::string::npos);
  CHECK(reply.body.find("No job finished in this window") == std::string::npos);
  CHECK(reply.body.find("Latest check run") != std::string::npos);  // the rest still answers
}

TEST_CASE("an SQL check's failing row links its entity and the jobs that touched it", "[console]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  Event welcome = event("welcome-email-42", State::enqueued, t0 - 3'600'000'000);
  welcome.job = "WelcomeEmailJob";
  welcome.entities = {"user:42"};
  Event other = event("other-job", State::succeeded, t0 - 3'600'000'000);
  other.entities = {"user:7"};
  store->append({welcome, other});
  CheckRunRecord run{t0, t0 + 1'000'000, "checks.yaml", {}};
  CheckResultRecord result;
  result.check = "unvalidated_users";
  result.status = CheckStatus::fail;
  result.violations = 1;
  result.new_violations = 1;
  result.started_at = t0;
  result.failing.push_back({"fp-42", t0, R"({"id":"42","email":"ann@example.com"})", "user:42"});
  run.results.push_back(result);
  store->record_check_run(run);
  Console console({});
  for (const std::string path : {"/ui/checks", "/ui/checks/unvalidated_users"}) {
    const Reply reply = get(console, store.get(), path, t0 + 2'000'000);
    INFO(path);
    REQUIRE(reply.status == 200);
    CHECK(reply.body.find("<a class=\"row-job\" href=\"/ui/jobs/welcome-email-42\">welcome-email-42</a>") !=
          std::string::npos);
    CHECK(reply.body.find("\">user:42</a>") != std::string::npos);
    CHECK(reply.body.find("other-job") == std::string::npos);  // another entity's job
  }
}
