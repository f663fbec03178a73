#pragma once
/// \file
/// A small client for `jobtrail serve`, used by `jobtrail exec --server`. Hides the HTTP library.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "jobtrail/event.h"

namespace jobtrail {

/// Posts events to a server. Not thread-safe: one per thread. Never throws after construction:
/// failures come back as text, because its callers must carry on without the server.
class IngestClient {
 public:
  /// `base_url` like "http://127.0.0.1:8089"; `token` empty for none. Throws
  /// std::invalid_argument for a URL that is not http(s)://host[:port].
  IngestClient(const std::string& base_url, std::string token, std::chrono::milliseconds timeout);
  ~IngestClient();
  IngestClient(const IngestClient&) = delete;
  IngestClient& operator=(const IngestClient&) = delete;

  /// Posts `events` as NDJSON and waits until they are committed. "" on success, else why not.
  std::string post(const std::vector<Event>& events);
  /// Registers the expected schedule of a job class. "" on success, else why not.
  std::string put_schedule(const std::string& job, const std::string& every, const std::string& grace);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace jobtrail
