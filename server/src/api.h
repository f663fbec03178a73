#pragma once
// What each endpoint answers, without HTTP: the routes in server.cpp only translate.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "jobtrail/server.h"
#include "jobtrail/store.h"
#include "jobtrail/tracker.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace jobtrail::server {

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

using QueryParams = std::map<std::string, std::string>;

/// {"error": message} with `status`.
Response error_response(int status, const std::string& message);

struct IngestRequest {
  std::string_view body;
  bool ndjson = false;       ///< Content-Type: application/x-ndjson
  bool wait_commit = false;  ///< ?wait=commit: answer once durable
  bool atomic = false;       ///< ?atomic=true: one bad event refuses the whole body
};

/// The endpoints. Thread-safe: the HTTP library calls it from its worker threads.
class Api {
 public:
  /// Opens the store and starts the tracker. Throws StoreError.
  explicit Api(const ServerOptions& options);
  ~Api();

  Response ingest(const IngestRequest& request);
  Response job(const std::string& job_id);
  Response trace(const std::string& correlation_id);
  Response jobs(const QueryParams& params);
  Response stats(const QueryParams& params);
  /// GET /v1/impact: `jobtrail impact`'s document for the same terms (view::set_impact_term).
  Response impact(const QueryParams& params);
  Response put_schedule(const std::string& job, std::string_view body);
  Response metrics();
  Response health();
  /// Runs `read` with a read-only store of the pool (the console's pages).
  void with_store(const std::function<void(Store&)>& read);

  /// Where the HTTP layer registers its own metrics (connections), beside the endpoints'.
  prometheus::Registry& registry() noexcept { return *registry_; }
  /// Counts one answered request for jobtrail_serve_requests_total.
  void count_request(std::string_view endpoint, int status) noexcept;
  /// Commits what was accepted and stops the tracker. False if something was left.
  bool shutdown() noexcept;

 private:
  /// A read-only store for one request; returned to the pool when the lease ends.
  class Lease;
  std::unique_ptr<Store> borrow_store();
  void give_back(std::unique_ptr<Store> store);

  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Tracker> tracker_;
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<Store>> pool_;  // Stores are not thread-safe: one per request
  std::mutex schedule_mutex_;
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* rejected_ = nullptr;
};

}  // namespace jobtrail::server
