#include "entity_impact.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace jobtrail::detail {

namespace {

bool later(Micros a, Micros b) { return a > b; }

/// Keeps the `keep` newest hits and those tied with the last of them, in no order.
template <typename Hits>
void trim(Hits& hits, std::size_t keep) {
  if (hits.size() <= keep) return;
  const auto nth = hits.begin() + static_cast<std::ptrdiff_t>(keep - 1);
  std::nth_element(hits.begin(), nth, hits.end(), [](const auto& a, const auto& b) { return later(a.first_at, b.first_at); });
  const Micros cutoff = nth->first_at;
  hits.erase(std::partition(nth + 1, hits.end(), [&](const auto& hit) { return hit.first_at == cutoff; }), hits.end());
}

}  // namespace

ImpactBuilder::ImpactBuilder(const ImpactFilter& filter)
    : filter_(filter), keep_(std::max<std::size_t>(filter.jobs_per_entity, 1)) {}

void ImpactBuilder::add(std::string_view entity, std::int64_t job_row, Micros first_at) {
  auto job = jobs_.try_emplace(job_row, false).first;
  if (entity.empty()) return;
  // A tag of another type: the job still matched, it just touched nothing of this type.
  if (!filter_.entity_type.empty() &&
      !(entity.size() > filter_.entity_type.size() && entity.starts_with(filter_.entity_type) &&
        entity[filter_.entity_type.size()] == ':')) {
    return;
  }
  job->second = true;
  auto it = entities_.find(entity);
  if (it == entities_.end()) {
    it = entities_.emplace(std::string(entity), Entity{}).first;
    it->second.first_at = it->second.last_at = first_at;
    it->second.trim_at = 2 * keep_;
  }
  Entity& hit = it->second;
  hit.first_at = std::min(hit.first_at, first_at);
  hit.last_at = std::max(hit.last_at, first_at);
  hit.jobs += 1;
  hit.newest.push_back({first_at, job_row});
  // Bounded memory however many jobs an entity has (but for jobs of one same microsecond).
  if (hit.newest.size() >= hit.trim_at) {
    trim(hit.newest, keep_);
    hit.trim_at = std::max(2 * keep_, 2 * hit.newest.size());
  }
}

ImpactReport ImpactBuilder::finish(const JobNamer& name) {
  const ImpactFilter& filter = filter_;
  ImpactReport report;
  report.matching_jobs = static_cast<std::int64_t>(jobs_.size());
  report.read_jobs = report.matching_jobs;
  report.tagged_jobs = std::count_if(jobs_.begin(), jobs_.end(), [](const auto& job) { return job.second; });
  report.entity_count = static_cast<std::int64_t>(entities_.size());
  std::map<std::string, std::int64_t> by_type;
  std::vector<std::pair<const std::string, Entity>*> order;
  order.reserve(entities_.size());
  for (auto& entry : entities_) {
    by_type[entry.first.substr(0, entry.first.find(':'))] += 1;
    order.push_back(&entry);
  }
  report.by_type.assign(by_type.begin(), by_type.end());
  // Most jobs first; equal counts by name (the map's order, kept by stable_sort).
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->second.jobs > b->second.jobs; });
  if (order.size() > filter.limit) order.resize(filter.limit);
  // The IDs of the listed entities' candidates, in one call.
  std::vector<std::int64_t> rows;
  if (filter.jobs_per_entity > 0) {
    for (auto* entry : order) {
      trim(entry->second.newest, keep_);
      for (const Hit& hit : entry->second.newest) rows.push_back(hit.job_row);
    }
  }
  const std::vector<std::string> ids = rows.empty() ? std::vector<std::string>() : name(rows);
  std::size_t next_id = 0;
  for (const auto* entry : order) {
    EntityImpact impact;
    impact.entity = entry->first;
    impact.jobs = entry->second.jobs;
    impact.first_at = entry->second.first_at;
    impact.last_at = entry->second.last_at;
    if (filter.jobs_per_entity > 0) {
      // Newest first, then by ID, so that equal times list the same way on every store.
      std::vector<std::pair<Micros, const std::string*>> named;
      for (const Hit& hit : entry->second.newest) named.emplace_back(hit.first_at, &ids.at(next_id++));
      std::sort(named.begin(), named.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? later(a.first, b.first) : *a.second < *b.second;
      });
      for (std::size_t i = 0; i < named.size() && i < filter.jobs_per_entity; ++i) impact.job_ids.push_back(*named[i].second);
    }
    report.entities.push_back(std::move(impact));
  }
  entities_.clear();
  jobs_.clear();
  return report;
}

std::int64_t count_impact_jobs(Store& store, const ImpactFilter& filter) {
  JobFilter jobs;
  jobs.job = filter.job;
  jobs.states = filter.states;
  const auto count = [&](std::optional<Micros> since, std::optional<Micros> until) {
    JobFilter part = jobs;
    part.since = since;
    part.until = until;
    return store.count_jobs(part, std::numeric_limits<std::int64_t>::max());
  };
  if (!filter.since || store.schema_version() < 5) return count(filter.since, filter.until);
  // Whole buckets from the first that starts at or after `since` to the one `until` (or, with
  // no until, now) falls in; what lies outside them is at most a bucket's worth of jobs at
  // each end (and, with no until, any job first seen in the future).
  const Micros first = tally_bucket_start(*filter.since) == *filter.since
                           ? *filter.since
                           : tally_bucket_start(*filter.since) + tally_bucket_length;
  const Micros now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  const Micros last = tally_bucket_start(filter.until.value_or(now));
  if (last <= first) return count(filter.since, filter.until);
  std::int64_t total = count(filter.since, first) + count(last, filter.until);
  for (const JobTally& row : store.tally({first, last})) {
    const bool class_matches = filter.job.empty() || row.job == filter.job;
    const bool state_matches =
        filter.states.empty() || std::find(filter.states.begin(), filter.states.end(), row.state) != filter.states.end();
    if (class_matches && state_matches) total += row.jobs;
  }
  return total;
}

ImpactReport finish_impact(Store& store, const ImpactFilter& filter, ImpactBuilder& builder, const JobNamer& name) {
  ImpactReport report = builder.finish(name);
  if (filter.max_jobs != 0 && report.read_jobs >= static_cast<std::int64_t>(filter.max_jobs)) {
    report.matching_jobs = count_impact_jobs(store, filter);
  }
  return report;
}

}  // namespace jobtrail::detail
