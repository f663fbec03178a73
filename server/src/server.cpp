// The HTTP face of `jobtrail serve`, on Boost.Beast over Asio. The only file of the server that
// includes Boost, which is slow to compile; everything an endpoint answers lives in api.cpp.
//
// Why an event loop: cpp-httplib 0.11 gives each connection one of a fixed pool of threads for
// as long as it stays open, so 60 idle keep-alive connections made GET /healthz take 33.5 s.
// Here one thread waits on every socket with epoll and parses requests; a connection costs a
// socket, a timer and a small buffer while it is idle. The endpoints, which may block on the
// store (reads, ?wait=commit), run on a pool of worker threads, so a slow one never holds up the
// loop. Candidates measured for this are in the commit that brought this file.
//
// A connection's life, each step with its own deadline:
//   1. idle: wait up to idle_timeout for the first byte of a request, else close quietly;
//   2. reading: headers, then the body, all within request_timeout of that first byte (408);
//      refusals that need no body (401, 411, 413, 415, 431, 503) are answered before reading it;
//   3. handling: the request goes to a worker; the loop carries on with other connections;
//   4. writing: the answer, within request_timeout; then back to 1 (keep-alive) or
//   5. closing: shut down our side and read what the client still sends for a moment, so the
//      answer is not lost to a reset when the client's body was left unread.

#include "jobtrail/server.h"

// Beast's string_view is std::string_view in this file, so header values mix with ours.
#define BOOST_BEAST_USE_STD_STRING_VIEW

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "api.h"
#include "jobtrail/console.h"

namespace jobtrail {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using server::Api;
using server::Response;

namespace {

/// Endpoints that block on the store (reads, ?wait=commit) run here, off the event loop.
/// Sixteen: more than the cores, so a few durable waits or slow reads leave room for /healthz.
constexpr std::size_t worker_threads = 16;
/// Descriptors kept back from the connection limit for the store's files, the workers' read
/// connections and the refusals below.
constexpr std::size_t reserved_descriptors = 64 + worker_threads * 4 + 128;
/// Connections beyond the limit being told so at once; more are closed without a word.
constexpr std::size_t max_refusals = 128;
/// How long a closing connection is read and discarded, so the client sees our answer.
constexpr std::chrono::milliseconds linger_time{2000};
/// How long accepting pauses when the process is out of descriptors: the kernel keeps new
/// connections in the listen backlog meanwhile, and accept() is not retried in a busy loop.
constexpr std::chrono::milliseconds out_of_descriptors_pause{100};

/// Raises the soft open-files limit to the hard one and returns the soft limit now in force.
std::size_t raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? static_cast<std::size_t>(1) << 20 : static_cast<std::size_t>(limit.rlim_cur);
}

void close_on_exec(int fd) {
  const int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/// Constant time, so the token cannot be guessed a byte at a time from response times.
bool same_token(std::string_view given, std::string_view expected) {
  if (given.size() != expected.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ expected[i]);
  }
  return difference == 0;
}

bool equal_ignoring_case(std::string_view given, std::string_view expected) {
  return given.size() == expected.size() &&
         std::equal(given.begin(), given.end(), expected.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

/// The endpoint label of jobtrail_serve_requests_total.
std::string_view endpoint_of(std::string_view path) {
  if (path == "/v1/events") return "events";
  if (path.starts_with("/v1/schedules/")) return "schedules";
  if (path.starts_with("/v1/jobs/")) return "job";
  if (path == "/v1/jobs") return "jobs";
  if (path == "/v1/stats") return "stats";
  if (path == "/v1/impact") return "impact";
  if (path.starts_with("/v1/traces/")) return "trace";
  if (path == "/metrics") return "metrics";
  if (path == "/healthz") return "healthz";
  if (path == "/ui" || path.starts_with("/ui/")) return "console";
  return "other";
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// %XX decoded (a malformed escape stays as it is); in a query, '+' is a space too.
std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      decoded += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      decoded += ' ';
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

/// A request target split into its decoded path and its query parameters, in order.
struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;

  explicit Target(std::string_view target) {
    const std::size_t question = target.find('?');
    path = percent_decode(target.substr(0, question), false);
    if (question == std::string_view::npos) return;
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        const std::size_t equals = pair.find('=');
        params.emplace_back(percent_decode(pair.substr(0, equals), true),
                            equals == std::string_view::npos ? std::string() : percent_decode(pair.substr(equals + 1), true));
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }

  /// A page of the web console (or one of its assets).
  bool is_console() const { return path == console::url_prefix || path.starts_with("/ui/"); }

  /// The first value of `key`, or "".
  std::string param(std::string_view key) const {
    for (const auto& [name, value] : params) {
      if (name == key) return value;
    }
    return {};
  }
};

using Request = http::request<http::string_body>;

/// What a request is answered: the endpoint's response, headers of its own, and whether the
/// connection must close after it.
struct Answer {
  Answer() = default;
  explicit Answer(Response answer, std::vector<std::pair<std::string, std::string>> extra_headers = {})
      : response(std::move(answer)), headers(std::move(extra_headers)) {}
  Response response;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;
};

}  // namespace

// Named rather than anonymous, because Server::Impl holds pointers to them.
namespace serve_http {
class Connection;
}  // namespace serve_http
using serve_http::Connection;

struct Server::Impl {
  ServerOptions options;
  Api api;
  // Everything below up to `port` belongs to the event loop's thread once run() has started.
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_pause{io};
  std::unordered_set<Connection*> connections;
  std::size_t connection_limit = 0;
  std::size_t refusals = 0;             // connections beyond the limit being told so
  std::size_t buffered_body_bytes = 0;  // Content-Length of bodies being read or handled
  bool closing_down = false;            // stop() reached the loop: no new requests
  // Thread-safe metrics, updated by the loop.
  prometheus::Gauge* open_gauge = nullptr;
  prometheus::Gauge* limit_gauge = nullptr;
  prometheus::Counter* refused_counter = nullptr;
  asio::thread_pool workers{worker_threads};

  std::atomic<int> port{0};
  std::atomic<bool> ready{false};  // the loop is running
  std::mutex state_mutex;
  bool bound = false;
  bool stopping = false;
  bool listening = false;  // run() is inside the loop

  console::Console pages{console_options(options)};

  /// The console asks for the token whenever serve has one: its pages show error texts,
  /// backtraces and entity IDs to whoever opens them (docs/console.md).
  static console::ConsoleOptions console_options(const ServerOptions& options) {
    console::ConsoleOptions result;
    result.require_token = !options.token.empty();
    result.token_matches = [token = options.token](std::string_view given) { return same_token(given, token); };
    return result;
  }

  explicit Impl(ServerOptions server_options) : options(std::move(server_options)), api(options) {
    open_gauge = &prometheus::BuildGauge()
                      .Name("jobtrail_serve_connections")
                      .Help("Connections open to jobtrail serve, idle keep-alive ones included")
                      .Register(api.registry())
                      .Add({});
    limit_gauge = &prometheus::BuildGauge()
                       .Name("jobtrail_serve_connections_limit")
                       .Help("Most connections jobtrail serve holds at once (after the open-files limit)")
                       .Register(api.registry())
                       .Add({});
    refused_counter = &prometheus::BuildCounter()
                           .Name("jobtrail_serve_connections_refused_total")
                           .Help("Connections refused because jobtrail serve held its limit")
                           .Register(api.registry())
                           .Add({});
  }

  std::size_t body_budget() const { return std::max(options.max_buffered_body_bytes, options.max_body_bytes); }

  /// The 401 to answer, or nothing when the request carries the token (or none is needed).
  std::optional<Answer> unauthorized(const Request& request) const {
    if (options.token.empty()) return std::nullopt;
    const std::string_view header = request[http::field::authorization];
    constexpr std::string_view scheme = "Bearer ";
    if (header.size() > scheme.size() && header.substr(0, scheme.size()) == scheme &&
        same_token(header.substr(scheme.size()), options.token)) {
      return std::nullopt;
    }
    return Answer(server::error_response(401, header.empty() ? "a bearer token is required (Authorization: Bearer TOKEN)"
                                                             : "the bearer token is wrong"),
                  {{"WWW-Authenticate", "Bearer realm=\"jobtrail\""}});
  }

  /// Refusals decided from the headers alone, before any of the body is read or recorded.
  std::optional<Answer> refuse_before_body(const Request& request, std::optional<std::uint64_t> content_length) {
    // A chunked body has no length to check against max_body_bytes up front; one Content-Length
    // keeps the rule simple for every client we ship.
    if (request.find(http::field::transfer_encoding) != request.end()) {
      return Answer{server::error_response(411, "Transfer-Encoding is not accepted: send the body with a Content-Length")};
    }
    // Inflating a compressed body could pass any --max-body (a decompression bomb).
    for (auto [at, end] = request.equal_range(http::field::content_encoding); at != end; ++at) {
      const std::string_view value = at->value();
      if (!value.empty() && !equal_ignoring_case(value, "identity")) {
        return Answer{server::error_response(
            415, fmt::format("Content-Encoding '{}' is not accepted: send the body uncompressed", value))};
      }
    }
    // The console's login form is the one write that comes without the token: it brings it.
    const bool login = request.method() == http::verb::post &&
                       Target(std::string_view(request.target().data(), request.target().size())).path == "/ui/login";
    if (request.method() != http::verb::get && request.method() != http::verb::head && !login) {
      if (std::optional<Answer> refusal = unauthorized(request)) return refusal;
    }
    if (content_length && *content_length > options.max_body_bytes) {
      return Answer{server::error_response(413, "the body is too large; send smaller batches")};
    }
    if (content_length && buffered_body_bytes + *content_length > body_budget()) {
      return Answer(server::error_response(503, "the server is receiving too many bodies at once; retry shortly"),
                    {{"Retry-After", "1"}});
    }
    return std::nullopt;
  }

  /// What the endpoint answers. Runs on a worker; Api is thread-safe.
  Answer route(const Request& request) {
    const Target target(std::string_view(request.target().data(), request.target().size()));
    const std::string_view endpoint = endpoint_of(target.path);
    Answer answer;
    try {
      answer = dispatch(request, target);
    } catch (const std::exception& error) {
      // Every answer is JSON, even when the store throws: a worker's client logs the body.
      answer = Answer{server::error_response(503, error.what())};
    }
    api.count_request(endpoint, answer.response.status);
    return answer;
  }

  Answer dispatch(const Request& request, const Target& target) {
    const http::verb method = request.method();
    const bool read = method == http::verb::get || method == http::verb::head;
    const std::string& path = target.path;
    // Writes were authorized before their body was read; reads only with protect_reads (serve
    // binds loopback by default, and the forensics API is most useful when nothing stands in
    // its way). /metrics and /healthz stay open for scrapers and probes.
    const auto guarded_read = [&](auto answer_read) -> Answer {
      if (options.protect_reads) {
        if (std::optional<Answer> refusal = unauthorized(request)) return *refusal;
      }
      return Answer{answer_read()};
    };
    if (target.is_console()) return console_page(request, target);
    if (method == http::verb::post && path == "/v1/events") {
      server::IngestRequest ingest;
      ingest.body = request.body();
      const std::string_view content_type = request[http::field::content_type];
      ingest.ndjson = content_type.find("ndjson") != std::string_view::npos ||
                      content_type.find("jsonlines") != std::string_view::npos;
      ingest.wait_commit = target.param("wait") == "commit" || request["X-Jobtrail-Wait"] == "commit";
      const std::string atomic = target.param("atomic");
      ingest.atomic = atomic == "true" || atomic == "1";
      return Answer{api.ingest(ingest)};
    }
    constexpr std::string_view schedules = "/v1/schedules/";
    if (method == http::verb::put && path.starts_with(schedules) && path.size() > schedules.size()) {
      return Answer{api.put_schedule(path.substr(schedules.size()), request.body())};
    }
    constexpr std::string_view jobs = "/v1/jobs/";
    constexpr std::string_view traces = "/v1/traces/";
    if (read && path.starts_with(jobs) && path.size() > jobs.size()) {
      return guarded_read([&] { return api.job(path.substr(jobs.size())); });
    }
    if (read && (path == "/v1/jobs" || path == "/v1/stats" || path == "/v1/impact")) {
      return guarded_read([&] {
        server::QueryParams params;
        for (const auto& [key, value] : target.params) {
          if (!params.emplace(key, value).second) {
            return server::error_response(400, fmt::format("parameter '{}' given twice", key));
          }
        }
        if (path == "/v1/impact") return api.impact(params);
        return path == "/v1/jobs" ? api.jobs(params) : api.stats(params);
      });
    }
    if (read && path.starts_with(traces) && path.size() > traces.size()) {
      return guarded_read([&] { return api.trace(path.substr(traces.size())); });
    }
    if (read && path == "/metrics") return Answer{api.metrics()};
    if (read && path == "/healthz") return Answer{api.health()};
    return Answer{server::error_response(
        404, fmt::format("no such endpoint: {} {}", std::string_view(request.method_string().data(),
                                                                      request.method_string().size()),
                         path))};
  }

  /// A page of the web console; the console checks the cookie or bearer itself.
  Answer console_page(const Request& request, const Target& target) {
    console::Request page;
    page.method = std::string(request.method_string().data(), request.method_string().size());
    page.path = target.path;
    // A form's body is encoded as a query is: one decoder for both.
    page.params = request.method() == http::verb::post ? Target("?" + request.body()).params : target.params;
    page.cookie = std::string(request[http::field::cookie]);
    page.bearer_ok = !unauthorized(request).has_value();
    page.fragment = request["X-Jobtrail-Fragment"] == "1";
    console::Reply reply;
    if (pages.needs_store(page)) {
      api.with_store([&](Store& store) { reply = pages.handle(page, &store, now_micros()); });
    } else {
      reply = pages.handle(page, nullptr, now_micros());
    }
    return Answer(Response{reply.status, std::move(reply.body), std::move(reply.content_type)}, std::move(reply.headers));
  }

  void accept();
  void refuse_connection(tcp::socket socket);
  void close_down();
};

namespace serve_http {

/// One client connection, driven by the event loop. Not thread-safe: only the loop's thread
/// touches it; a worker only runs Impl::route() for it and posts the answer back.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& impl, tcp::socket socket)
      : impl_(impl),
        socket_(std::move(socket)),
        timer_(impl.io),
        buffer_(impl.options.max_header_bytes + 64 * 1024) {}

  void start() {
    impl_.connections.insert(this);
    impl_.open_gauge->Set(static_cast<double>(impl_.connections.size()));
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    wait_for_request();
  }

  /// The server is stopping: a connection between requests closes now; one whose request is
  /// with a worker or being answered closes once the answer is written.
  void on_close_down() {
    if (phase_ == Phase::idle || phase_ == Phase::reading) close_now();
  }

 private:
  enum class Phase { idle, reading, handling, writing, closing, closed };

  void wait_for_request() {
    phase_ = Phase::idle;
    if (impl_.closing_down) return close_now();
    if (buffer_.size() > 0) return read_header();  // a pipelined request is already here
    buffer_.shrink_to_fit();  // an idle connection holds no buffer
    arm(impl_.options.idle_timeout);
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code error) {
      if (error || self->timed_out_) return self->close_now();
      self->read_header();
    });
  }

  void read_header() {
    phase_ = Phase::reading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(impl_.options.max_header_bytes, UINT32_MAX)));
    // Checked against the Content-Length once the headers are in, after the refusals that come
    // first (401 before 413). Not boost::none: Beast 1.74 compares a length above "none".
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    arm(impl_.options.request_timeout);
    http::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](error_code error, std::size_t) {
      self->on_header(error);
    });
  }

  void on_header(error_code error) {
    if (phase_ == Phase::closed) return;
    if (timed_out_) return answer_and_close(408, "the request was not sent in time");
    // The client closed between requests, or before finishing one: nothing to answer.
    if (error == http::error::end_of_stream || error == http::error::partial_message) return close_now();
    if (error == http::error::header_limit || error == http::error::buffer_overflow) {
      return answer_and_close(431, fmt::format("the request line and headers are larger than {} bytes",
                                               impl_.options.max_header_bytes));
    }
    if (error && error.category() == http::make_error_code(http::error::bad_method).category()) {
      return answer_and_close(400, fmt::format("malformed HTTP request: {}", error.message()));
    }
    if (error) return close_now();  // the socket failed or the client went away

    const Request& request = parser_->get();
    version_ = request.version();
    head_ = request.method() == http::verb::head;
    std::optional<std::uint64_t> content_length;
    if (parser_->content_length()) content_length = *parser_->content_length();
    if (std::optional<Answer> refusal = impl_.refuse_before_body(request, content_length)) {
      const Target target(std::string_view(request.target().data(), request.target().size()));
      impl_.api.count_request(endpoint_of(target.path), refusal->response.status);
      refusal->close = true;
      return write_answer(std::move(*refusal));
    }
    if (content_length) {
      reserved_body_ = static_cast<std::size_t>(*content_length);
      impl_.buffered_body_bytes += reserved_body_;
    }
    if (parser_->is_done()) return handle();
    parser_->body_limit(impl_.options.max_body_bytes);
    const auto expect = request[http::field::expect];
    if (version_ >= 11 && equal_ignoring_case(expect, "100-continue")) {
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(go_on.data(), go_on.size()),
                        [self = shared_from_this()](error_code write_error, std::size_t) {
                          if (write_error || self->timed_out_) return self->close_now();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    // Many clients (cpp-httplib's among them) write the headers and the body in two sends: with
    // Nagle on their side and a delayed ACK on ours the body waits 40 ms for our ACK of the
    // headers (single POSTs measured p50 44 ms). Acknowledge now; the kernel sends the ACK it
    // was holding back.
    const int yes = 1;
    setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &yes, sizeof yes);
    http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](error_code error, std::size_t) {
      self->on_body(error);
    });
  }

  void on_body(error_code error) {
    if (phase_ == Phase::closed) return;
    if (timed_out_) return answer_and_close(408, "the request body was not sent in time");
    if (error == http::error::body_limit) return answer_and_close(413, "the body is too large; send smaller batches");
    if (error && error.category() == http::make_error_code(http::error::bad_method).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
      return answer_and_close(400, fmt::format("malformed HTTP request: {}", error.message()));
    }
    if (error) return close_now();
    handle();
  }

  /// Hands the request to a worker; the loop goes on with other connections meanwhile.
  void handle() {
    phase_ = Phase::handling;
    disarm();
    keep_alive_ = parser_->get().keep_alive();
    auto request = std::make_shared<Request>(parser_->release());
    parser_.reset();
    asio::post(impl_.workers, [self = shared_from_this(), request, loop = asio::make_work_guard(impl_.io)]() mutable {
      Answer answer = self->impl_.route(*request);
      request.reset();  // the body's memory goes back before the answer waits for the loop
      asio::post(self->impl_.io, [self, answer = std::move(answer)]() mutable {
        self->release_body();
        if (self->phase_ == Phase::closed) return;
        answer.close = answer.close || !self->keep_alive_;
        self->write_answer(std::move(answer));
      });
      loop.reset();
    });
  }

  void answer_and_close(int status, const std::string& message) {
    Answer answer{server::error_response(status, message)};
    answer.close = true;
    impl_.api.count_request("other", status);
    write_answer(std::move(answer));
  }

  template <class Body>
  void send(std::shared_ptr<http::response<Body>> message, bool close) {
    http::async_write(socket_, *message, [self = shared_from_this(), message, close](error_code error, std::size_t) {
      if (error || self->timed_out_) return self->close_now();
      if (close) return self->linger();
      self->wait_for_request();
    });
  }

  void write_answer(Answer answer) {
    phase_ = Phase::writing;
    const bool close = answer.close || impl_.closing_down;
    arm(impl_.options.request_timeout);
    const auto fill = [&](auto& message) {
      message.result(static_cast<unsigned>(answer.response.status));
      message.set(http::field::content_type, answer.response.content_type);
      for (const auto& [name, value] : answer.headers) message.set(name, value);
      message.keep_alive(!close);
    };
    if (head_) {
      auto message = std::make_shared<http::response<http::empty_body>>();
      message->version(version_);
      fill(*message);
      message->content_length(answer.response.body.size());
      return send(std::move(message), close);
    }
    auto message = std::make_shared<http::response<http::string_body>>();
    message->version(version_);
    fill(*message);
    message->body() = std::move(answer.response.body);
    message->prepare_payload();
    send(std::move(message), close);
  }

  /// Our side is done; what the client still sends is read and dropped for a moment, so that
  /// closing with its unread body does not reset the connection before it has read the answer.
  void linger() {
    phase_ = Phase::closing;
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    arm(linger_time);
    drain();
  }

  void drain() {
    // Every closing connection reads into the same scratch: only the loop's thread reads, and
    // what lands there is thrown away.
    static char scratch[4096];
    socket_.async_read_some(asio::buffer(scratch), [self = shared_from_this()](error_code error, std::size_t) {
      if (error || self->timed_out_) return self->close_now();
      self->drain();
    });
  }

  void close_now() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    disarm();
    error_code ignored;
    socket_.close(ignored);
    // Not parser_.reset(): a read that completed just before the close may still be queued,
    // and Beast's read runs the parser when it comes out. The parser goes with the connection.
    release_body();
    impl_.connections.erase(this);
    impl_.open_gauge->Set(static_cast<double>(impl_.connections.size()));
  }

  void release_body() {
    impl_.buffered_body_bytes -= reserved_body_;
    reserved_body_ = 0;
  }

  /// One deadline at a time: when it passes, the pending operation is cancelled and its
  /// handler sees timed_out_.
  void arm(std::chrono::milliseconds timeout) {
    const unsigned generation = ++timer_generation_;
    timed_out_ = false;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), generation](error_code error) {
      if (error || generation != self->timer_generation_ || self->phase_ == Phase::closed) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  void disarm() {
    ++timer_generation_;
    timer_.cancel();
  }

  Server::Impl& impl_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Phase phase_ = Phase::idle;
  unsigned timer_generation_ = 0;
  bool timed_out_ = false;
  bool keep_alive_ = true;
  bool head_ = false;
  unsigned version_ = 11;
  std::size_t reserved_body_ = 0;
};

/// A connection beyond the limit: told 503 in one write and closed after a short linger.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(Server::Impl& impl, tcp::socket socket) : impl_(impl), socket_(std::move(socket)), timer_(impl.io) {}

  void start(const std::string& answer) {
    ++impl_.refusals;
    error_code ignored;
    // A fresh socket's send buffer takes the whole answer at once.
    socket_.non_blocking(true, ignored);
    socket_.write_some(asio::buffer(answer), ignored);
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    timer_.expires_after(std::chrono::milliseconds(500));
    timer_.async_wait([self = shared_from_this()](error_code) {
      error_code ignored_close;
      self->socket_.close(ignored_close);
    });
    drain();
  }
  ~Refusal() { --impl_.refusals; }

 private:
  void drain() {
    static char scratch[4096];
    socket_.async_read_some(asio::buffer(scratch), [self = shared_from_this()](error_code error, std::size_t) {
      if (error) {
        self->timer_.cancel();
        return;
      }
      self->drain();
    });
  }

  Server::Impl& impl_;
  tcp::socket socket_;
  asio::steady_timer timer_;
};

}  // namespace serve_http

using serve_http::Refusal;

void Server::Impl::accept() {
  acceptor.async_accept([this](error_code error, tcp::socket socket) {
    if (closing_down || error == asio::error::operation_aborted) return;
    if (error) {
      // Out of descriptors (EMFILE, ENFILE) or memory: retrying at once would spin the loop.
      // New connections wait in the kernel's backlog until some close.
      if (error == asio::error::no_descriptors || error.value() == ENFILE || error == asio::error::no_buffer_space ||
          error == asio::error::no_memory) {
        accept_pause.expires_after(out_of_descriptors_pause);
        accept_pause.async_wait([this](error_code paused) {
          if (!paused && !closing_down) accept();
        });
        return;
      }
      return accept();  // the client gave up before we took it (ECONNABORTED and the like)
    }
    close_on_exec(socket.native_handle());
    if (connections.size() >= connection_limit) {
      refuse_connection(std::move(socket));
    } else {
      std::make_shared<Connection>(*this, std::move(socket))->start();
    }
    accept();
  });
}

void Server::Impl::refuse_connection(tcp::socket socket) {
  refused_counter->Increment();
  if (refusals >= max_refusals) return;  // a flood: closed without a word
  const Response body = server::error_response(
      503, fmt::format("too many connections (the limit is {}); retry later", connection_limit));
  api.count_request("other", 503);
  std::make_shared<Refusal>(*this, std::move(socket))
      ->start(fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                          "Retry-After: 1\r\nConnection: close\r\n\r\n{}",
                          body.content_type, body.body.size(), body.body));
}

void Server::Impl::close_down() {
  if (closing_down) return;
  closing_down = true;
  error_code ignored;
  acceptor.close(ignored);
  accept_pause.cancel();
  // on_close_down() may close a connection, which takes it out of the set: walk a copy.
  const std::vector<Connection*> open(connections.begin(), connections.end());
  for (Connection* connection : open) connection->on_close_down();
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  stop();
  impl_->api.shutdown();
}

int Server::bind() {
  std::lock_guard lock(impl_->state_mutex);
  Impl& impl = *impl_;
  if (impl.bound) return impl.port;
  const std::string& host = impl.options.host;
  const int port = impl.options.port;
  const auto fail = [&](const std::string& reason) {
    return ListenError(fmt::format("cannot listen on {}:{}: {}", host, port, reason));
  };

  // A fleet's connections each hold a descriptor: take all the kernel allows this process, and
  // keep the connection limit below it so a refusal, not a failing accept(), answers the excess.
  const std::size_t open_files = raise_open_files_limit();
  impl.connection_limit = std::max<std::size_t>(
      1, std::min(impl.options.max_connections,
                  open_files > reserved_descriptors * 2 ? open_files - reserved_descriptors : open_files / 2));

  error_code error;
  tcp::resolver resolver(impl.io);
  const auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, error);
  if (error || found.empty()) throw fail(fmt::format("cannot resolve '{}': {}", host, error.message()));
  const tcp::endpoint endpoint = found.begin()->endpoint();
  impl.acceptor.open(endpoint.protocol(), error);
  if (error) throw fail(error.message());
  close_on_exec(impl.acceptor.native_handle());
  // SO_REUSEADDR only: SO_REUSEPORT would let a second `jobtrail serve` bind the same port and
  // silently take half the traffic; "address in use" is the answer people expect.
  impl.acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  impl.acceptor.bind(endpoint, error);
  if (!error) impl.acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    const std::string reason = error == asio::error::address_in_use
                                   ? "the address is already in use (is another jobtrail serve running?)"
                                   : error.message();
    error_code ignored;
    impl.acceptor.close(ignored);
    throw fail(reason);
  }
  impl.port = impl.acceptor.local_endpoint().port();
  impl.limit_gauge->Set(static_cast<double>(impl.connection_limit));
  impl.bound = true;
  return impl.port;
}

bool Server::run() {
  bind();
  Impl& impl = *impl_;
  {
    std::lock_guard lock(impl.state_mutex);
    // A stop() that came before we got here must not be lost.
    if (impl.stopping) return impl.api.shutdown();
    impl.listening = true;
  }
  asio::post(impl.io, [&impl] { impl.ready = true; });
  impl.accept();
  // Returns once close_down() has run and every connection has closed: each request a worker
  // took was answered first, so every event any client was told "accepted" is in the
  // tracker's queue by now.
  impl.io.run();
  impl.ready = false;
  impl.workers.join();
  {
    std::lock_guard lock(impl.state_mutex);
    impl.listening = false;
  }
  return impl.api.shutdown();
}

void Server::stop() {
  std::lock_guard lock(impl_->state_mutex);
  impl_->stopping = true;
  // Before run() the flag is enough; inside it, the loop closes down when it gets to this.
  if (impl_->listening) asio::post(impl_->io, [&impl = *impl_] { impl.close_down(); });
}

bool Server::wait_until_ready(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!impl_->ready) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

int Server::port() const noexcept { return impl_->port; }

}  // namespace jobtrail
