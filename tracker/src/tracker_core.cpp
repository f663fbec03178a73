#include "tracker_core.h"

#include <unistd.h>

#include <algorithm>

namespace jobtrail::detail {

namespace {
// Buffers grow to the peak load once and keep their capacity; this is only where they start.
constexpr std::size_t initial_queue_capacity = 1024;

std::string default_worker_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string name = host[0] != '\0' ? host : "unknown-host";
  // Leave room for ":<pid>" within the limit every event's worker must respect.
  name.resize(std::min(name.size(), EventLimits::max_name_length - 12));
  return name + ":" + std::to_string(getpid());
}

}  // namespace

TrackerCore::TrackerCore(TrackerOptions tracker_options)
    : options(std::move(tracker_options)),
      worker(options.worker.empty() ? default_worker_name() : options.worker),
      reporter(options.error_handler),
      queue(options.queue_capacity, options.max_batch, initial_queue_capacity) {
  if (options.registry) metrics = std::make_unique<TrackerMetrics>(*options.registry, options.queue_capacity);
}

TrackerCounters TrackerCore::counters() const noexcept {
  TrackerCounters counters;
  counters.accepted = accepted.load(std::memory_order_relaxed);
  counters.stored = stored.load(std::memory_order_relaxed);
  counters.duplicates = duplicates.load(std::memory_order_relaxed);
  counters.anomalies = anomalies.load(std::memory_order_relaxed);
  counters.dropped_invalid = dropped_invalid.load(std::memory_order_relaxed);
  counters.dropped_queue_full = dropped_queue_full.load(std::memory_order_relaxed);
  counters.dropped_shut_down = dropped_shut_down.load(std::memory_order_relaxed);
  counters.dropped_store_error = dropped_store_error.load(std::memory_order_relaxed);
  counters.store_errors = store_errors.load(std::memory_order_relaxed);
  return counters;
}

void TrackerCore::update_metrics() noexcept {
  if (!metrics) return;
  StateCounts by_state{};
  for (std::size_t i = 0; i < by_state.size(); ++i) by_state[i] = accepted_by_state[i].load(std::memory_order_relaxed);
  metrics->fold_counters(counters(), by_state);
  metrics->set_queue_depth(queue.depth());
}

std::string plural(std::size_t count, const char* noun) {
  std::string text = std::to_string(count);
  text.append(" ").append(noun);
  if (count != 1) text.append("s");
  return text;
}

std::string quoted_job_id(const std::string& job_id) {
  // Job IDs come from callers; keep the ones quoted in error messages short.
  constexpr std::size_t shown = 80;
  std::string quoted;
  quoted.reserve(std::min(job_id.size(), shown) + 5);
  quoted.append("\"").append(job_id, 0, shown).append(job_id.size() > shown ? "...\"" : "\"");
  return quoted;
}

}  // namespace jobtrail::detail
