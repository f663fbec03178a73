#pragma once
/// \file
/// RAII instrumentation for C++ workers.

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "jobtrail/context.h"
#include "jobtrail/event.h"

namespace jobtrail {

class Tracker;

/// What a worker knows about the job it is about to run.
struct JobInfo {
  std::string job_id;
  std::string job;
  std::string queue;
  std::int32_t attempt = 1;
  std::string correlation_id;   ///< "" = the thread's current correlation ID
  std::string parent_job_id;
  std::string idempotency_key;
  std::vector<std::string> entities;
};

/// One attempt of one job: records `started` when made, the outcome when the job says so,
/// and a failure when left without one (by an exception or an early return). While it lives,
/// jobs enqueued on this thread inherit its correlation ID and get it as parent.
/// Not thread-safe: use it on the thread that runs the job.
class JobScope {
 public:
  JobScope(Tracker& tracker, JobInfo info);
  ~JobScope();
  JobScope(const JobScope&) = delete;
  JobScope& operator=(const JobScope&) = delete;

  /// Says the job is alive (long jobs call this so they are not taken for stuck).
  void heartbeat() noexcept;
  /// Links the job to a business object, "type:id" (recorded with the next event).
  void tag(std::string entity) noexcept;
  void succeed() noexcept;
  /// The attempt failed; the job may be retried.
  void fail(std::string_view error_class, std::string_view message,
            std::string_view backtrace = {}) noexcept;
  /// The job gives up for good.
  void give_up(std::string_view error_class, std::string_view message) noexcept;
  void cancel(std::string_view reason = {}) noexcept;

  /// Runs `body`; an exception it throws is recorded as the failure (with its what()) and
  /// rethrown. Succeeds if `body` returns without having recorded an outcome.
  template <typename Body>
  decltype(auto) run(Body&& body) {
    try {
      if constexpr (std::is_void_v<decltype(body())>) {
        body();
        if (!finished_) succeed();
      } else {
        decltype(auto) result = body();
        if (!finished_) succeed();
        return result;
      }
    } catch (...) {
      fail_with_current_exception();
      throw;
    }
  }

  const std::string& job_id() const noexcept { return info_.job_id; }
  const std::string& correlation_id() const noexcept { return info_.correlation_id; }
  bool finished() const noexcept { return finished_; }

 private:
  void finish(State state, ErrorInfo error) noexcept;
  void fail_with_current_exception() noexcept;
  Event make_event(State state) const;

  Tracker& tracker_;
  JobInfo info_;
  std::vector<std::string> pending_entities_;
  int uncaught_at_start_;
  bool finished_ = false;
  detail::ContextSwap context_;
};

}  // namespace jobtrail
