#pragma once
// A realistic stream of job events for the benchmarks: web requests that each fan out into a
// few jobs with Sidekiq-like 24-hex job IDs, 32-hex correlation IDs, an entity tag per job,
// and one job in ten failing once before its retry succeeds.

#include <cstdint>
#include <vector>

#include "jobtrail/event.h"

namespace jobtrail::bench {

struct Workload {
  std::vector<Event> events;
  std::vector<std::string> job_ids;          ///< every job, for look-ups
  std::vector<std::string> correlation_ids;  ///< every request
  std::vector<std::string> entities;         ///< every entity tagged
};

/// About `event_count` events (whole jobs only), times starting at `start` and spread over
/// `span` microseconds. Deterministic for a given seed.
Workload make_workload(std::size_t event_count, Micros start, Micros span, std::uint64_t seed);

}  // namespace jobtrail::bench
