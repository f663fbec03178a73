#pragma once
// The blast radius of a set of jobs, computed from (entity, job) pairs; shared by the stores so
// that every store counts and orders the entities the same way.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::detail {

/// Names jobs by their rows: the job ID of each row given, in the same order.
using JobNamer = std::function<std::vector<std::string>(const std::vector<std::int64_t>& rows)>;

/// Collects one row per matching job and entity tag (an untagged job once, with no entity),
/// then yields the ImpactReport. Jobs come as rows, not IDs: a store reads them from an index
/// alone, and only the few jobs the report names are looked up (JobNamer). Not thread-safe.
class ImpactBuilder {
 public:
  /// Keeps filter.jobs_per_entity job IDs per entity (the newest) and only entities of
  /// filter.entity_type, when one is given.
  explicit ImpactBuilder(const ImpactFilter& filter);
  /// `entity` empty for a matching job without tags. `job_row` tells jobs apart and names
  /// them afterwards (the store's row of the job).
  void add(std::string_view entity, std::int64_t job_row, Micros first_at);
  /// The report; `name` is called at most once, for the newest jobs of the entities listed.
  ImpactReport finish(const JobNamer& name);

 private:
  struct Hit {
    Micros first_at;
    std::int64_t job_row;
  };
  struct Entity {
    std::int64_t jobs = 0;
    Micros first_at = 0, last_at = 0;
    /// The newest `keep_` hits and any tied with the last of them (their IDs decide which is
    /// listed): kept short by trimming whenever it reaches `trim_at`.
    std::vector<Hit> newest;
    std::size_t trim_at = 0;
  };
  std::map<std::string, Entity, std::less<>> entities_;
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
ImpactReport finish_impact(Store& store, const ImpactFilter& filter, ImpactBuilder& builder, const JobNamer& name);

}  // namespace jobtrail::detail
