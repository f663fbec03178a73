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

}  // namespace jobtrail::detail
