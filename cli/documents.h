#pragma once
/// \file
/// The JSON document of every read, built once: `jobtrail show/trace/ls/stats --format json`
/// print them and the HTTP read API (server/src/api.cpp) answers them, so the two cannot drift
/// (tests/server/test_json_contract.cpp compares them). Each builder lives beside the command
/// that prints its shape; ls's job and page documents are job_json and page_json (job_view.h).

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jobtrail/store.h"

namespace jobtrail::cli {

/// What `show` reads for one job.
struct ShowData {
  JobRecord job;
  std::vector<EventRecord> events;
  std::vector<AnomalyRecord> anomalies;
};
/// Reads one job for `show` and GET /v1/jobs/ID; nothing for an unknown ID. (cmd_show.cpp)
std::optional<ShowData> read_show(Store& store, const std::string& job_id);
/// job_json plus "anomaly_records" and "events" (with offset_us). (cmd_show.cpp)
nlohmann::ordered_json show_document(const ShowData& data, Micros now);

/// One document per job of a trace, in the order the tree draws them, each job_json plus
/// "depth" (0 for a root). (cmd_trace.cpp)
std::vector<nlohmann::ordered_json> trace_documents(const std::vector<JobRecord>& jobs, Micros now);

/// One job class's line of `stats`. (cmd_stats.cpp)
nlohmann::ordered_json stats_document(const JobStats& stats);

}  // namespace jobtrail::cli
