#pragma once
/// \file
/// Correlation: which request (and which job) the current thread is working for, so that
/// jobs enqueued from inside a job or a request join its trace without plumbing.

#include <optional>
#include <string>
#include <string_view>

namespace jobtrail {

/// The correlation ID of the request or job this thread works for, or "" outside any.
const std::string& current_correlation_id() noexcept;
/// The ID of the job this thread is running, or "" outside a JobScope.
const std::string& current_job_id() noexcept;

/// A fresh correlation ID: 32 lowercase hex digits, the shape of a W3C trace ID.
std::string new_correlation_id();

/// The trace ID of a W3C `traceparent` header ("00-<trace-id>-<parent-id>-<flags>"), or
/// nothing if the header is malformed, so existing tracing IDs become correlation IDs.
std::optional<std::string> correlation_from_traceparent(std::string_view header) noexcept;

/// Sets the correlation ID for this thread until destroyed (a web request handler, say);
/// scopes nest. Not thread-safe by design: it belongs to the thread that made it.
class CorrelationScope {
 public:
  explicit CorrelationScope(std::string correlation_id);
  ~CorrelationScope();
  CorrelationScope(const CorrelationScope&) = delete;
  CorrelationScope& operator=(const CorrelationScope&) = delete;

 private:
  std::string previous_correlation_;
  std::string previous_job_;
};

namespace detail {
/// Used by JobScope: makes `job_id` the thread's current job under `correlation_id`.
class ContextSwap {
 public:
  ContextSwap(const std::string& correlation_id, const std::string& job_id);
  ~ContextSwap();
  ContextSwap(const ContextSwap&) = delete;
  ContextSwap& operator=(const ContextSwap&) = delete;

 private:
  std::string previous_correlation_;
  std::string previous_job_;
};
}  // namespace detail

}  // namespace jobtrail
