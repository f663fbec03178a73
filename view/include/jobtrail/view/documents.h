#pragma once
/// \file
/// The JSON document of every read, built once: `jobtrail show/trace/ls/stats --format json`
/// print them and the HTTP read API (server/src/api.cpp) answers them, so the two cannot drift
/// (tests/server/test_json_contract.cpp compares them). ls's job and page documents are
/// job_json and page_json (job_view.h); `impact` and GET /v1/impact answer impact_document.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jobtrail/store.h"
#include "jobtrail/view/trace_tree.h"

namespace jobtrail::view {

/// How many anomalies `show` lists for one job (the newest); more would not help anyone
/// reading one job, and JSON gets the same list.
inline constexpr std::size_t max_anomalies_shown = 20;

/// An anomaly as the shown job sees it. The store returns those flagged on another job that
/// names this one (a later success under this job's idempotency key) with that job's ID.
struct ShownAnomaly {
  AnomalyKind kind = AnomalyKind::duplicate_success;
  std::string other_job_id;  ///< the other job of the pair, whichever side flagged it
  bool flagged_on_other = false;
  std::string detail;
  Micros at = 0;
};

/// What `show` reads for one job.
struct ShowData {
  JobRecord job;
  std::vector<EventRecord> events;
  std::vector<ShownAnomaly> anomalies;  ///< the newest max_anomalies_shown of it, either side
  bool more_anomalies = false;          ///< whether older ones exist beyond those
};
/// Reads one job for `show` and GET /v1/jobs/ID; nothing for an unknown ID.
std::optional<ShowData> read_show(Store& store, const std::string& job_id);
/// The time show's offsets count from: the job's first event, or an earlier stored one.
Micros first_event_time(const JobRecord& job, const std::vector<EventRecord>& events);
/// job_json plus "anomaly_records" and "events" (with offset_us).
nlohmann::ordered_json show_document(const ShowData& data, Micros now);

/// One document per job of a trace, in the order the tree draws them (TreeBuilder), each
/// job_json plus "depth" (0 for a root), "parent_link", "parent_correlation_id" and
/// "hidden_below".
std::vector<nlohmann::ordered_json> trace_documents(const std::vector<TreeLine>& lines, Micros now);
/// The same for the whole tree of `jobs`, their parents outside it looked up in `store`.
std::vector<nlohmann::ordered_json> trace_documents(Store& store, const std::vector<JobRecord>& jobs, Micros now);

/// Without a finished job there is no failure rate: 0.0% would claim a perfect record.
bool has_finished_jobs(const JobStats& stats);
/// One job class's line of `stats`.
nlohmann::ordered_json stats_document(const JobStats& stats, StatsGroup by = StatsGroup::job_class);

/// The answer of `impact` as one object: "filter" (job, states, type, since, until, max_jobs:
/// what was asked, the default since included), "matching_jobs", "read_jobs" (the newest of
/// them whose tags were read), "complete" (all were), then of the jobs read "tagged_jobs",
/// "entity_count", "by_type" ({type: distinct entities}), "shown" (entities listed) and "entities", most jobs
/// first: each {"entity", "type", "jobs", "first_at", "last_at", "job_ids" (newest first),
/// "more_job_ids" (how many of its jobs job_ids leaves out)}.
nlohmann::ordered_json impact_document(const ImpactFilter& filter, const ImpactReport& report);

}  // namespace jobtrail::view
