#include "jobtrail/view/documents.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "jobtrail/view/job_view.h"
#include "jobtrail/view/time_format.h"
#include "jobtrail/view/trace_tree.h"

namespace jobtrail::view {
namespace {

nlohmann::ordered_json duration_json(std::optional<Micros> duration) {
  return duration ? nlohmann::ordered_json(*duration) : nlohmann::ordered_json(nullptr);
}

}  // namespace

Micros first_event_time(const JobRecord& job, const std::vector<EventRecord>& events) {
  Micros first = job.first_event_at;
  for (const EventRecord& event : events) first = std::min(first, event.at);
  return first;
}

std::optional<ShowData> read_show(Store& store, const std::string& job_id) {
  std::optional<JobRecord> job = store.find_job(job_id);
  if (!job) return std::nullopt;
  ShowData data;
  data.events = store.events_of(job_id);
  if (job->anomalies != 0) {
    for (const AnomalyRecord& record : store.anomalies(job_id, max_anomalies_shown + 1)) {
      const bool other_side = record.job_id != job_id;
      data.anomalies.push_back(
          {record.kind, other_side ? record.job_id : record.other_job_id, other_side, record.detail, record.at});
    }
    data.more_anomalies = data.anomalies.size() > max_anomalies_shown;
    if (data.more_anomalies) data.anomalies.resize(max_anomalies_shown);
  }
  data.job = std::move(*job);
  return data;
}

nlohmann::ordered_json show_document(const ShowData& data, Micros now) {
  nlohmann::ordered_json result = job_json(data.job, now);
  nlohmann::ordered_json anomaly_records = nlohmann::ordered_json::array();
  // other_job_id is the other job of the pair, whichever of the two was flagged.
  for (const ShownAnomaly& anomaly : data.anomalies) {
    anomaly_records.push_back({{"kind", std::string(to_string(anomaly.kind))},
                               {"at", format_rfc3339(anomaly.at)},
                               {"other_job_id", json_text(anomaly.other_job_id)},
                               {"detail", json_text(anomaly.detail)}});
  }
  result["anomaly_records"] = std::move(anomaly_records);
  const Micros first = first_event_time(data.job, data.events);
  nlohmann::ordered_json timeline = nlohmann::ordered_json::array();
  for (const EventRecord& event : data.events) {
    timeline.push_back({{"at", format_rfc3339(event.at)},
                        {"offset_us", event.at - first},
                        {"state", std::string(to_string(event.state))},
                        {"attempt", event.attempt > 0 ? nlohmann::ordered_json(event.attempt) : nullptr},
                        {"worker", json_text(event.worker)},
                        {"error", json_error(event.error)}});
  }
  result["events"] = std::move(timeline);
  return result;
}

std::vector<nlohmann::ordered_json> trace_documents(const std::vector<TreeLine>& lines, Micros now) {
  std::vector<nlohmann::ordered_json> documents;
  for (const TreeLine& line : lines) {
    if (line.job == nullptr) continue;  // a note of hidden jobs: its count is on the job above
    nlohmann::ordered_json job = job_json(*line.job, now);
    job["depth"] = line.depth;
    job["parent_link"] = std::string(link_name(line.link));
    job["parent_correlation_id"] = json_text(line.parent_trace);
    job["hidden_below"] = line.hidden_below;
    documents.push_back(std::move(job));
  }
  return documents;
}

std::vector<nlohmann::ordered_json> trace_documents(Store& store, const std::vector<JobRecord>& jobs, Micros now) {
  return trace_documents(TreeBuilder(jobs).lines(outside_parents(store, jobs)), now);
}

bool has_finished_jobs(const JobStats& stats) { return stats.succeeded + stats.failed + stats.dead > 0; }

nlohmann::ordered_json stats_document(const JobStats& stats, StatsGroup by) {
  const bool by_queue = by == StatsGroup::queue;
  return {{by_queue ? "queue" : "job", json_text(by_queue ? stats.queue : stats.job)},
          {"total", stats.total},
          {"enqueued", stats.enqueued},
          {"running", stats.running},
          {"succeeded", stats.succeeded},
          {"failed", stats.failed},
          {"dead", stats.dead},
          {"cancelled", stats.cancelled},
          {"failure_rate", has_finished_jobs(stats) ? nlohmann::ordered_json(stats.failure_rate) : nullptr},
          {"wait_p50_us", duration_json(stats.wait_p50)},
          {"wait_p95_us", duration_json(stats.wait_p95)},
          {"run_p50_us", duration_json(stats.run_p50)},
          {"run_p95_us", duration_json(stats.run_p95)}};
}

nlohmann::ordered_json impact_document(const ImpactFilter& filter, const ImpactReport& report) {
  nlohmann::ordered_json states = nlohmann::ordered_json::array();
  for (const State state : filter.states) states.push_back(std::string(to_string(state)));
  nlohmann::ordered_json by_type = nlohmann::ordered_json::object();
  for (const auto& [type, count] : report.by_type) by_type[type] = count;
  nlohmann::ordered_json entities = nlohmann::ordered_json::array();
  for (const EntityImpact& entity : report.entities) {
    entities.push_back({{"entity", entity.entity},
                        {"type", entity.entity.substr(0, entity.entity.find(':'))},
                        {"jobs", entity.jobs},
                        {"first_at", format_rfc3339(entity.first_at)},
                        {"last_at", format_rfc3339(entity.last_at)},
                        {"job_ids", entity.job_ids},
                        {"more_job_ids", entity.jobs - static_cast<std::int64_t>(entity.job_ids.size())}});
  }
  return {{"filter",
           {{"job", json_text(filter.job)},
            {"states", std::move(states)},
            {"type", json_text(filter.entity_type)},
            {"since", json_time(filter.since)},
            {"until", json_time(filter.until)},
            {"max_jobs", filter.max_jobs}}},
          {"matching_jobs", report.matching_jobs},
          {"read_jobs", report.read_jobs},
          {"complete", report.complete()},
          {"tagged_jobs", report.tagged_jobs},
          {"entity_count", report.entity_count},
          {"by_type", std::move(by_type)},
          {"shown", report.entities.size()},
          {"entities", std::move(entities)}};
}

}  // namespace jobtrail::view
