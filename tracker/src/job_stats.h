#pragma once
// Per job class statistics computed from job rows; shared by the stores so that every store
// reports the same percentiles the same way.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::detail {

/// Collects one row per job, then yields JobStats sorted by job class. Not thread-safe.
class JobStatsBuilder {
 public:
  void add(const std::string& job, State state, std::optional<Micros> wait, std::optional<Micros> run);
  std::vector<JobStats> finish();

 private:
  struct Samples {
    JobStats stats;
    std::vector<Micros> waits;
    std::vector<Micros> runs;
  };
  std::map<std::string, Samples> by_job_;
};

/// The nearest-rank percentile (0 < p <= 100) of `values`; sorts them. Empty → nothing.
std::optional<Micros> percentile(std::vector<Micros>& values, double p);

}  // namespace jobtrail::detail
