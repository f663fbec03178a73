#pragma once
// The blast radius of a set of jobs, computed from (entity, job) pairs; shared by the stores so
// that every store counts and orders the entities the same way.

#include <algorithm>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <string>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::detail {

/// Collects one row per matching job and entity tag (an untagged job once, with no entity),
/// then yields the ImpactReport. Not thread-safe.
class ImpactBuilder {
 public:
  /// Keeps filter.jobs_per_entity job IDs per entity (the newest) and only entities of
  /// filter.entity_type, when one is given.
  explicit ImpactBuilder(const ImpactFilter& filter)
      : filter_(filter), keep_(std::max<std::size_t>(filter.jobs_per_entity, 1)) {}
  /// `entity` empty for a matching job without tags. `job_row` tells jobs apart (any unique key).
  void add(const std::string& entity, std::int64_t job_row, const std::string& job_id, Micros first_at);
  ImpactReport finish();

 private:
  struct Hit {
    Micros first_at;
    std::int64_t job_row;
    std::string job_id;
  };
  struct Entity {
    std::int64_t jobs = 0;
    Micros first_at = 0, last_at = 0;
    std::vector<Hit> newest;  ///< kept short: trimmed to the newest `keep_` whenever it doubles
  };
  std::map<std::string, Entity> entities_;
  ImpactFilter filter_;
  std::size_t keep_;
  std::unordered_map<std::int64_t, bool> jobs_;  ///< job row -> tagged
};

/// How many jobs `filter` selects (class, states, window), exact and read from a bounded part
/// of the store: the kept counts (Store::tally) of the whole buckets inside the window, and a
/// count of the jobs of the partial bucket at each end. A window without a start, or a store
/// whose schema predates the kept counts, is counted job by job. For an `impact` whose read
/// stopped at ImpactFilter::max_jobs.
std::int64_t count_impact_jobs(Store& store, const ImpactFilter& filter);

/// What a store's `impact` returns after reading at most filter.max_jobs jobs (the newest)
/// into `builder`: the report, its matching_jobs counted by count_impact_jobs when the read may
/// have stopped short.
ImpactReport finish_impact(Store& store, const ImpactFilter& filter, ImpactBuilder& builder);

}  // namespace jobtrail::detail
