// The HTTP face of `jobtrail serve`. The only file of the server that includes httplib.h,
// which is slow to compile; everything an endpoint answers lives in api.cpp.

#include "jobtrail/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "api.h"

namespace jobtrail {

using server::Api;
using server::Response;

struct Server::Impl {
  ServerOptions options;
  Api api;
  httplib::Server http;
  std::atomic<int> port{0};
  std::mutex state_mutex;
  bool bound = false;
  bool stopping = false;
  bool listening = false;  // run() is inside listen_after_bind()

  explicit Impl(ServerOptions server_options) : options(std::move(server_options)), api(options) {}
};

namespace {

void send(httplib::Response& res, const Response& answer) {
  res.status = answer.status;
  res.set_content(answer.body, answer.content_type.c_str());
}

/// Answers and then closes the connection, for a request whose body was left unread: httplib
/// 0.11 would keep the connection alive and take that body for the next request. A content
/// provider that reports failure once it has written everything is the one way its API offers
/// to end a connection from a handler.
void send_and_close(httplib::Response& res, const Response& answer) {
  res.status = answer.status;
  res.set_header("Connection", "close");
  auto body = std::make_shared<const std::string>(answer.body);
  res.set_content_provider(body->size(), answer.content_type.c_str(),
                           [body](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                             sink.write(body->data() + offset, length);
                             return false;
                           });
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

/// Why binding failed, from the kernel: httplib only says "false".
std::string bind_failure(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); error != 0) {
    return fmt::format("cannot resolve '{}': {}", host, gai_strerror(error));
  }
  std::string reason = "unknown error";
  const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd >= 0) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
      reason = errno == EADDRINUSE ? "the address is already in use (is another jobtrail serve running?)"
                                   : std::strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(found);
  return reason;
}

bool equal_ignoring_case(std::string_view given, std::string_view expected) {
  return given.size() == expected.size() &&
         std::equal(given.begin(), given.end(), expected.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

/// The endpoint label of jobtrail_serve_requests_total for a request refused before routing.
std::string_view endpoint_of(const std::string& path) {
  if (path == "/v1/events") return "events";
  if (path.starts_with("/v1/schedules/")) return "schedules";
  if (path.starts_with("/v1/jobs/")) return "job";
  if (path == "/v1/jobs") return "jobs";
  if (path.starts_with("/v1/traces/")) return "trace";
  return "other";
}

}  // namespace

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& impl = *impl_;
  httplib::Server& http = impl.http;
  // Larger bodies get 413 from httplib before any of them is read into memory or recorded.
  http.set_payload_max_length(impl.options.max_body_bytes);
  http.set_read_timeout(30, 0);
  // httplib's default adds SO_REUSEPORT, which lets a second `jobtrail serve` bind the same
  // port and silently take half the traffic; "address in use" is the answer people expect.
  http.set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_keep_alive_max_count(1000);

  // Writes need the token when one is set; reads only with protect_reads (serve binds loopback
  // by default, and the forensics API is most useful when nothing stands in its way).
  /// The 401 to answer (with its header set on `res`), or nothing when the request may pass.
  const auto unauthorized = [&impl](const httplib::Request& req, httplib::Response& res) -> std::optional<Response> {
    if (impl.options.token.empty()) return std::nullopt;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view scheme = "Bearer ";
    if (header.size() > scheme.size() && header.compare(0, scheme.size(), scheme) == 0 &&
        same_token(std::string_view(header).substr(scheme.size()), impl.options.token)) {
      return std::nullopt;
    }
    res.set_header("WWW-Authenticate", "Bearer realm=\"jobtrail\"");
    return server::error_response(401, header.empty() ? "a bearer token is required (Authorization: Bearer TOKEN)"
                                                       : "the bearer token is wrong");
  };
  // Runs after the headers and before httplib reads any of the body. httplib enforces
  // payload_max_length only against a Content-Length: a chunked body would be read whole and a
  // compressed one inflated past it (a decompression bomb), so both are refused here, and an
  // unauthorized write is refused before its body costs memory.
  http.set_pre_routing_handler([&impl, unauthorized](const httplib::Request& req, httplib::Response& res) {
    const auto refuse = [&](const Response& answer) {
      send_and_close(res, answer);
      impl.api.count_request(endpoint_of(req.path), res.status);
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.has_header("Transfer-Encoding")) {
      return refuse(server::error_response(411, "Transfer-Encoding is not accepted: send the body with a Content-Length"));
    }
    for (auto [at, end] = req.headers.equal_range("Content-Encoding"); at != end; ++at) {
      if (!at->second.empty() && !equal_ignoring_case(at->second, "identity")) {
        return refuse(server::error_response(
            415, fmt::format("Content-Encoding '{}' is not accepted: send the body uncompressed", at->second)));
      }
    }
    if (req.method != "GET" && req.method != "HEAD") {
      if (std::optional<Response> refusal = unauthorized(req, res)) return refuse(*refusal);
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every handler answers JSON, even when the store throws: a worker's client logs the body.
  const auto guarded = [&impl](const char* endpoint, auto handler) {
    return [&impl, endpoint, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        handler(req, res);
      } catch (const std::exception& error) {
        send(res, server::error_response(503, error.what()));
      }
      impl.api.count_request(endpoint, res.status);
    };
  };

  // Writes were authorized in the pre-routing handler, before their body was read.
  http.Post("/v1/events", guarded("events", [&impl](const httplib::Request& req, httplib::Response& res) {
    server::IngestRequest request;
    request.body = req.body;
    const std::string content_type = req.get_header_value("Content-Type");
    request.ndjson = content_type.find("ndjson") != std::string::npos ||
                     content_type.find("jsonlines") != std::string::npos;
    request.wait_commit = req.get_param_value("wait") == "commit" ||
                          req.get_header_value("X-Jobtrail-Wait") == "commit";
    const std::string atomic = req.get_param_value("atomic");
    request.atomic = atomic == "true" || atomic == "1";
    send(res, impl.api.ingest(request));
  }));
  http.Put(R"(/v1/schedules/(.+))",
           guarded("schedules", [&impl](const httplib::Request& req, httplib::Response& res) {
             send(res, impl.api.put_schedule(req.matches[1], req.body));
           }));
  const auto may_read = [&impl, unauthorized](const httplib::Request& req, httplib::Response& res) {
    if (!impl.options.protect_reads) return true;
    const std::optional<Response> refusal = unauthorized(req, res);
    if (refusal) send(res, *refusal);
    return !refusal;
  };
  http.Get(R"(/v1/jobs/(.+))", guarded("job", [&impl, may_read](const httplib::Request& req, httplib::Response& res) {
             if (!may_read(req, res)) return;
             send(res, impl.api.job(req.matches[1]));
           }));
  http.Get("/v1/jobs", guarded("jobs", [&impl, may_read](const httplib::Request& req, httplib::Response& res) {
             if (!may_read(req, res)) return;
             server::QueryParams params;
             for (const auto& [key, value] : req.params) {
               if (!params.emplace(key, value).second) {
                 send(res, server::error_response(400, fmt::format("parameter '{}' given twice", key)));
                 return;
               }
             }
             send(res, impl.api.jobs(params));
           }));
  http.Get(R"(/v1/traces/(.+))", guarded("trace", [&impl, may_read](const httplib::Request& req, httplib::Response& res) {
             if (!may_read(req, res)) return;
             send(res, impl.api.trace(req.matches[1]));
           }));
  http.Get("/metrics", guarded("metrics", [&impl](const httplib::Request&, httplib::Response& res) {
             send(res, impl.api.metrics());
           }));
  http.Get("/healthz", guarded("healthz", [&impl](const httplib::Request&, httplib::Response& res) {
             send(res, impl.api.health());
           }));
  // httplib answers unknown routes and oversized bodies with an empty body; say what happened.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return;
    if (res.status == 413) {
      send(res, server::error_response(413, "the body is too large; send smaller batches"));
    } else if (res.status == 404) {
      send(res, server::error_response(404, fmt::format("no such endpoint: {} {}", req.method, req.path)));
    } else {
      send(res, server::error_response(res.status, "request refused"));
    }
  });
}

Server::~Server() {
  stop();
  impl_->api.shutdown();
}

int Server::bind() {
  std::lock_guard lock(impl_->state_mutex);
  if (impl_->bound) return impl_->port;
  const int port = impl_->options.port;
  const int bound_port = port == 0 ? impl_->http.bind_to_any_port(impl_->options.host)
                                   : (impl_->http.bind_to_port(impl_->options.host, port) ? port : -1);
  if (bound_port <= 0) {
    throw ListenError(fmt::format("cannot listen on {}:{}: {}", impl_->options.host, port,
                                  bind_failure(impl_->options.host, port)));
  }
  impl_->port = bound_port;
  impl_->bound = true;
  return bound_port;
}

bool Server::run() {
  bind();
  {
    std::lock_guard lock(impl_->state_mutex);
    // A stop() that came before we got here must not be lost.
    if (impl_->stopping) return impl_->api.shutdown();
    impl_->listening = true;
  }
  impl_->http.listen_after_bind();
  {
    std::lock_guard lock(impl_->state_mutex);
    impl_->listening = false;
  }
  // listen_after_bind() returns once its workers have answered every request in flight, so
  // every event any client was told "accepted" is in the tracker's queue by now.
  return impl_->api.shutdown();
}

void Server::stop() {
  {
    std::lock_guard lock(impl_->state_mutex);
    impl_->stopping = true;
    if (!impl_->listening) return;
  }
  // run() is about to enter or is inside listen, and httplib's stop() is a no-op until it is
  // running: wait for that however long it takes (a loaded machine may take seconds), or until
  // run() has returned on its own. Giving up would lose the stop and leave listen running.
  while (!impl_->http.is_running()) {
    {
      std::lock_guard lock(impl_->state_mutex);
      if (!impl_->listening) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  impl_->http.stop();
}

bool Server::wait_until_ready(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!impl_->http.is_running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

int Server::port() const noexcept { return impl_->port; }

}  // namespace jobtrail
