#pragma once
/// \file
/// The JSON document of every read, built once: `jobtrail show/trace/ls/stats --format json`
/// print them and the HTTP read API (server/src/api.cpp) answers them, so the two cannot drift
/// (tests/server/test_json_contract.cpp compares them). ls's job and page documents are
/// job_json and page_json (job_view.h).

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jobtrail/store.h"

namespace jobtrail::view {

/// What `show` reads for one job.
struct ShowData {
  JobRecord job;
  std::vector<EventRecord> events;
  std::vector<AnomalyRecord> anomalies;  ///< the newest 20 flagged for it
};
/// Reads one job for `show` and GET /v1/jobs/ID; nothing for an unknown ID.
std::optional<ShowData> read_show(Store& store, const std::string& job_id);
/// The time show's offsets count from: the job's first event, or an earlier stored one.
Micros first_event_time(const JobRecord& job, const std::vector<EventRecord>& events);
/// job_json plus "anomaly_records" and "events" (with offset_us).
nlohmann::ordered_json show_document(const ShowData& data, Micros now);

/// One document per job of a trace, in the order the tree draws them (TreeBuilder), each
/// job_json plus "depth" (0 for a root).
std::vector<nlohmann::ordered_json> trace_documents(const std::vector<JobRecord>& jobs, Micros now);

/// Without a finished job there is no failure rate: 0.0% would claim a perfect record.
bool has_finished_jobs(const JobStats& stats);
/// One job class's line of `stats`.
nlohmann::ordered_json stats_document(const JobStats& stats);

}  // namespace jobtrail::view
