#pragma once
/// \file
/// `jobtrail serve`: HTTP ingest of events, a read API over the store, /metrics and /healthz.
/// The HTTP library stays behind this header.

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace jobtrail {

struct ServerOptions {
  std::string store_url;            ///< see open_store(); created if missing
  std::string host = "127.0.0.1";   ///< loopback unless the operator says otherwise
  int port = 8089;                  ///< 0 picks a free port (tests, benches)
  /// Bearer token required on writes (POST, PUT); empty means writes are open.
  std::string token;
  /// Require the token for the read API (/v1/jobs, /v1/traces) as well; /metrics and
  /// /healthz stay open for scrapers and probes.
  bool protect_reads = false;
  std::size_t max_body_bytes = 16 * 1024 * 1024;  ///< larger bodies get 413
  std::size_t max_events_per_request = 10000;     ///< more events get 413
  /// How long `?wait=commit` waits for durability before answering 503.
  std::chrono::milliseconds commit_timeout{10000};
  /// How long stop() spends committing what was accepted.
  std::chrono::milliseconds shutdown_timeout{30000};
  /// Tracker queue: events accepted but not yet committed.
  std::size_t queue_capacity = 200000;

  /// Most connections open at once, idle keep-alive ones included; one more is answered 503
  /// and closed. Lowered to what the open-files limit allows (its soft limit is raised to the
  /// hard limit at bind()).
  std::size_t max_connections = 10000;
  /// Largest request line plus headers; larger get 431.
  std::size_t max_header_bytes = 16 * 1024;
  /// Request bodies being received or handled at once, summed over every connection; a request
  /// whose Content-Length would pass it gets 503 (retry shortly). At least max_body_bytes.
  std::size_t max_buffered_body_bytes = 256 * 1024 * 1024;
  /// How long a keep-alive connection may wait for its next request before it is closed.
  std::chrono::milliseconds idle_timeout{120000};
  /// How long a client has, from a request's first byte, to send all of it (headers and body);
  /// slower ones get 408 and are closed, so a byte a second cannot hold a connection. The same
  /// bound applies to taking an answer.
  std::chrono::milliseconds request_timeout{30000};
};

/// Why the server could not start listening (the address is in use, say).
class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The HTTP server: one event loop holds every connection, a small pool of workers runs the
/// endpoints. Thread-safe: stop() and port() may be called from any thread while run() serves
/// on another.
class Server {
 public:
  /// Opens (or creates) the store and starts the tracker. Throws StoreError.
  explicit Server(ServerOptions options);
  /// Stops serving if still running and commits what was accepted.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the listening socket; returns the port (useful with port 0). Throws ListenError.
  int bind();
  /// Serves until stop(); binds first if bind() was not called. Throws ListenError. Once
  /// stopped, commits every accepted event (up to shutdown_timeout); returns false if some
  /// could not be committed.
  bool run();
  /// Stops accepting connections and lets requests in flight finish; run() then returns.
  /// Not async-signal-safe: call it from a thread that waits for the signal (sigwait).
  void stop();
  /// Blocks until run() is accepting connections (or `timeout` passes).
  bool wait_until_ready(std::chrono::milliseconds timeout) const;

  int port() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace jobtrail
