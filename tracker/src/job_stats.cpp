#include "job_stats.h"

#include <algorithm>
#include <cmath>

namespace jobtrail::detail {

std::optional<Micros> percentile(std::vector<Micros>& values, double p) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

void JobStatsBuilder::add(const std::string& job, State state, std::optional<Micros> wait,
                          std::optional<Micros> run) {
  auto& samples = by_job_[job];
  auto& stats = samples.stats;
  stats.total += 1;
  switch (state) {
    case State::enqueued: stats.enqueued += 1; break;
    case State::started:
    case State::heartbeat: stats.running += 1; break;
    case State::succeeded: stats.succeeded += 1; break;
    case State::failed: stats.failed += 1; break;
    case State::dead: stats.dead += 1; break;
    case State::cancelled: stats.cancelled += 1; break;
  }
  // Negative spans come from clocks that disagree between hosts; they say nothing true.
  if (wait && *wait >= 0) samples.waits.push_back(*wait);
  if (run && *run >= 0) samples.runs.push_back(*run);
}

std::vector<JobStats> JobStatsBuilder::finish() {
  std::vector<JobStats> result;
  result.reserve(by_job_.size());
  for (auto& [job, samples] : by_job_) {
    auto stats = samples.stats;
    stats.job = job;
    auto finished = stats.succeeded + stats.failed + stats.dead;
    stats.failure_rate =
        finished > 0 ? static_cast<double>(stats.failed + stats.dead) / static_cast<double>(finished) : 0.0;
    stats.wait_p50 = percentile(samples.waits, 50);
    stats.wait_p95 = percentile(samples.waits, 95);
    stats.run_p50 = percentile(samples.runs, 50);
    stats.run_p95 = percentile(samples.runs, 95);
    result.push_back(std::move(stats));
  }
  by_job_.clear();
  return result;
}

}  // namespace jobtrail::detail
