#include "api.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "jobtrail/view/documents.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/list_filter.h"
#include "jobtrail/ingest.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::server {
namespace {

using ordered_json = nlohmann::ordered_json;

std::string dump(const ordered_json& value) {
  // Stored text may hold invalid UTF-8 from an older writer; replace it rather than fail the read.
  return value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

Response json_response(int status, const ordered_json& value) { return {status, dump(value) + "\n"}; }

/// An empty gauge family; its samples are added by the caller.
prometheus::MetricFamily gauge_family(const char* name, const char* help) {
  prometheus::MetricFamily result;
  result.name = name;
  result.help = help;
  result.type = prometheus::MetricType::Gauge;
  return result;
}

/// Most (job class, queue) pairs with gauges of their own; the rest are summed under "other",
/// so job names that carry IDs cannot blow up a scrape (the tracker's metrics do the same).
constexpr std::size_t max_gauge_pairs = 500;

prometheus::ClientMetric gauge_sample(const std::string& job, const std::string& queue, double value) {
  prometheus::ClientMetric metric;
  metric.label = {{"job_class", job}, {"queue", queue}};
  metric.gauge.value = value;
  return metric;
}

// The expected schedules of cron-like jobs (`exec --every`) with their last run, so that a
// missed run alerts within minutes instead of at the next nightly check. Schedules are
// registered by operators, so there are few; the cap only guards against a runaway script.
std::vector<prometheus::MetricFamily> schedule_families(const std::vector<Schedule>& schedules) {
  prometheus::MetricFamily interval = gauge_family("jobtrail_cron_expected_interval_seconds",
                                             "How often a job registered with exec --every should run");
  prometheus::MetricFamily grace =
      gauge_family("jobtrail_cron_grace_seconds", "How late such a run may start before it counts as missed");
  prometheus::MetricFamily last_run = gauge_family("jobtrail_cron_last_run_timestamp_seconds",
                                             "When the newest job of the class was first seen; absent if none ran");
  const auto sample = [](const std::string& job, double value) {
    prometheus::ClientMetric metric;
    metric.label = {{"job_class", job}};
    metric.gauge.value = value;
    return metric;
  };
  const std::size_t count = std::min(schedules.size(), max_gauge_pairs);
  for (std::size_t i = 0; i < count; ++i) {
    const Schedule& schedule = schedules[i];
    interval.metric.push_back(sample(schedule.job, static_cast<double>(schedule.every) / 1e6));
    grace.metric.push_back(sample(schedule.job, static_cast<double>(schedule.grace) / 1e6));
    if (schedule.last_run_at) {
      last_run.metric.push_back(sample(schedule.job, static_cast<double>(*schedule.last_run_at) / 1e6));
    }
  }
  return {std::move(interval), std::move(grace), std::move(last_run)};
}

std::vector<prometheus::MetricFamily> active_job_families(std::vector<ActiveJobs> active, Micros now) {
  if (active.size() > max_gauge_pairs) {
    ActiveJobs other;
    other.job = other.queue = "other";
    for (std::size_t i = max_gauge_pairs; i < active.size(); ++i) {
      other.waiting += active[i].waiting;
      other.running += active[i].running;
      const auto older = [](std::optional<Micros> a, std::optional<Micros> b) {
        if (!a) return b;
        if (!b) return a;
        return std::optional<Micros>(std::min(*a, *b));
      };
      other.oldest_waiting_since = older(other.oldest_waiting_since, active[i].oldest_waiting_since);
      other.oldest_running_since = older(other.oldest_running_since, active[i].oldest_running_since);
      other.longest_silent_since = older(other.longest_silent_since, active[i].longest_silent_since);
    }
    active.resize(max_gauge_pairs);
    active.push_back(std::move(other));
  }
  prometheus::MetricFamily running = gauge_family("jobtrail_jobs_running", "Jobs now started and not yet finished");
  prometheus::MetricFamily waiting = gauge_family("jobtrail_jobs_waiting", "Jobs now enqueued and not yet started");
  prometheus::MetricFamily oldest_running = gauge_family(
      "jobtrail_oldest_running_job_age_seconds", "How long the longest-running job has been running");
  prometheus::MetricFamily oldest_waiting = gauge_family(
      "jobtrail_oldest_waiting_job_age_seconds", "How long the longest-waiting job has been waiting to start");
  prometheus::MetricFamily silence = gauge_family(
      "jobtrail_running_job_silence_seconds",
      "Longest time a running job has gone without a sign of life (its start or latest heartbeat)");
  const auto age = [now](Micros since) { return std::max<double>(0, static_cast<double>(now - since) / 1e6); };
  for (const ActiveJobs& pair : active) {
    running.metric.push_back(gauge_sample(pair.job, pair.queue, static_cast<double>(pair.running)));
    waiting.metric.push_back(gauge_sample(pair.job, pair.queue, static_cast<double>(pair.waiting)));
    // An age only where there is such a job: a 0 would read as "a job just started".
    if (pair.oldest_running_since) {
      oldest_running.metric.push_back(gauge_sample(pair.job, pair.queue, age(*pair.oldest_running_since)));
    }
    if (pair.oldest_waiting_since) {
      oldest_waiting.metric.push_back(gauge_sample(pair.job, pair.queue, age(*pair.oldest_waiting_since)));
    }
    if (pair.longest_silent_since) {
      silence.metric.push_back(gauge_sample(pair.job, pair.queue, age(*pair.longest_silent_since)));
    }
  }
  return {std::move(running), std::move(waiting), std::move(oldest_running), std::move(oldest_waiting),
          std::move(silence)};
}

/// The same filter as `jobtrail ls`, from query parameters. Returns a reason on bad input.
std::string filter_from(const QueryParams& params, Micros now, JobFilter& filter) {
  // A bound of its own: one request must not make the server build an unbounded answer.
  constexpr std::size_t longest_page = 10000;
  for (const auto& [key, value] : params) {
    if (std::string problem = view::set_filter_term(filter, key, value, now, key, longest_page); !problem.empty()) {
      return problem;
    }
  }
  return {};
}

}  // namespace

Response error_response(int status, const std::string& message) {
  return json_response(status, ordered_json{{"error", message}});
}

class Api::Lease {
 public:
  explicit Lease(Api& api) : api_(api), store_(api.borrow_store()) {}
  ~Lease() { api_.give_back(std::move(store_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Store* operator->() const { return store_.get(); }
  Store& operator*() const { return *store_; }

 private:
  Api& api_;
  std::unique_ptr<Store> store_;
};

Api::Api(const ServerOptions& options) : options_(options), registry_(std::make_shared<prometheus::Registry>()) {
  // Opened here rather than inside the tracker so a bad --db fails at start with its reason.
  std::unique_ptr<Store> store = open_store(options_.store_url);
  TrackerOptions tracker_options;
  tracker_options.registry = registry_;
  tracker_options.queue_capacity = options_.queue_capacity;
  tracker_options.durable_timeout = options_.commit_timeout;
  tracker_options.shutdown_timeout = options_.shutdown_timeout;
  // The events come from workers elsewhere: serve's own host:pid never ran any of them.
  tracker_options.stamp_worker = false;
  tracker_ = std::make_unique<Tracker>(std::move(store), tracker_options);
  requests_ = &prometheus::BuildCounter()
                   .Name("jobtrail_serve_requests_total")
                   .Help("HTTP requests answered by jobtrail serve, by endpoint and status code")
                   .Register(*registry_);
  rejected_ = &prometheus::BuildCounter()
                   .Name("jobtrail_serve_events_rejected_total")
                   .Help("Events refused by POST /v1/events, by reason")
                   .Register(*registry_);
}

Api::~Api() { shutdown(); }

std::unique_ptr<Store> Api::borrow_store() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!pool_.empty()) {
      std::unique_ptr<Store> store = std::move(pool_.back());
      pool_.pop_back();
      return store;
    }
  }
  OpenOptions read_only;
  read_only.read_only = true;
  return open_store(options_.store_url, read_only);
}

void Api::give_back(std::unique_ptr<Store> store) {
  if (!store) return;
  std::lock_guard lock(pool_mutex_);
  pool_.push_back(std::move(store));
}

void Api::count_request(std::string_view endpoint, int status) noexcept {
  try {
    requests_->Add({{"endpoint", std::string(endpoint)}, {"code", std::to_string(status)}}).Increment();
  } catch (...) {
    // A metric must never fail a request.
  }
}

Response Api::ingest(const IngestRequest& request) {
  DecodeOptions decode_options;
  decode_options.max_events = options_.max_events_per_request;
  decode_options.ndjson = request.ndjson;
  DecodedEvents decoded = decode_events(request.body, decode_options);
  const char* position_name = decoded.shape == BodyShape::ndjson ? "line" : "index";
  const auto rejected_json = [&](const std::vector<RejectedEvent>& rejected) {
    ordered_json items = ordered_json::array();
    for (const RejectedEvent& item : rejected) items.push_back({{position_name, item.position}, {"error", item.reason}});
    return items;
  };
  const auto count_rejected = [&](const char* reason, std::size_t n) {
    if (n > 0) rejected_->Add({{"reason", reason}}).Increment(static_cast<double>(n));
  };
  if (!decoded.body_error.empty()) {
    count_rejected(decoded.too_many ? "too_many" : "malformed", 1);
    return json_response(decoded.too_many ? 413 : 400,
                         {{"accepted", 0}, {"durable", false}, {"error", decoded.body_error}, {"rejected", ordered_json::array()}});
  }
  count_rejected("invalid", decoded.rejected.size());
  if (request.atomic && !decoded.rejected.empty()) {
    return json_response(400, {{"accepted", 0},
                               {"durable", false},
                               {"error", "atomic: nothing recorded because some events are invalid"},
                               {"rejected", rejected_json(decoded.rejected)}});
  }

  std::size_t accepted = 0;
  std::size_t busy = 0;
  for (std::size_t i = 0; i < decoded.events.size(); ++i) {
    const RecordStatus status = tracker_->record(std::move(decoded.events[i]));
    if (status == RecordStatus::queued) {
      ++accepted;
      continue;
    }
    std::string reason = status == RecordStatus::queue_full ? "server busy: the queue is full; retry later"
                         : status == RecordStatus::shut_down ? "server shutting down; retry later"
                                                              : fmt::format("not recorded: {}", to_string(status));
    if (status == RecordStatus::queue_full || status == RecordStatus::shut_down) ++busy;
    decoded.rejected.push_back({decoded.positions[i], std::move(reason)});
  }
  count_rejected("busy", busy);
  std::sort(decoded.rejected.begin(), decoded.rejected.end(),
            [](const RejectedEvent& a, const RejectedEvent& b) { return a.position < b.position; });

  bool durable = false;
  if (request.wait_commit && accepted > 0) {
    durable = tracker_->flush(options_.commit_timeout);
    if (!durable) {
      return json_response(503, {{"accepted", accepted},
                                 {"durable", false},
                                 {"error", "accepted but not committed in time; the store may be slow or failing"},
                                 {"rejected", rejected_json(decoded.rejected)}});
    }
  }
  ordered_json answer = {{"accepted", accepted}, {"durable", durable}, {"rejected", rejected_json(decoded.rejected)}};
  if (!decoded.truncated.empty()) {
    // Said only when it happened, so a client that logs answers sees its texts were cut.
    ordered_json truncated = ordered_json::array();
    for (const TruncatedEvent& item : decoded.truncated) {
      truncated.push_back({{position_name, item.position}, {"fields", item.fields.fields()}});
    }
    answer["truncated"] = std::move(truncated);
  }
  if (decoded.rejected.empty()) return json_response(request.wait_commit ? 200 : 202, answer);
  // Everything refused only because we are busy: a plain retry will do.
  if (accepted == 0 && busy == decoded.rejected.size()) return json_response(503, answer);
  return json_response(400, answer);
}

// The documents below are the ones `jobtrail show/trace/ls/stats --format json` print
// (view/documents.h): one builder each, so the API and the CLI cannot drift apart.

Response Api::job(const std::string& job_id) {
  Lease store(*this);
  const std::optional<view::ShowData> data = view::read_show(*store, job_id);
  if (!data) return error_response(404, fmt::format("no job with ID '{}'", job_id));
  return json_response(200, view::show_document(*data, now_micros()));
}

Response Api::trace(const std::string& correlation_id) {
  Lease store(*this);
  const std::vector<JobRecord> jobs = store->jobs_in_trace(correlation_id);
  if (jobs.empty()) return error_response(404, fmt::format("no jobs with correlation ID '{}'", correlation_id));
  ordered_json list = ordered_json::array();
  for (ordered_json& document : view::trace_documents(*store, jobs, now_micros())) list.push_back(std::move(document));
  return json_response(200, {{"correlation_id", correlation_id}, {"jobs", std::move(list)}});
}

Response Api::jobs(const QueryParams& params) {
  const Micros now = now_micros();
  JobFilter filter;
  if (std::string problem = filter_from(params, now, filter); !problem.empty()) return error_response(400, problem);
  Lease store(*this);
  const JobPage page = list_page(*store, filter);
  ordered_json list = ordered_json::array();
  for (const JobRecord& job : page.jobs) list.push_back(view::job_json(job, now));
  ordered_json result = {{"jobs", std::move(list)}};
  result.update(view::page_json(page));
  return json_response(200, result);
}

Response Api::stats(const QueryParams& params) {
  std::optional<Micros> since;
  for (const auto& [key, value] : params) {
    if (key != "since") return error_response(400, fmt::format("unknown parameter '{}' (known: since)", key));
    since = view::parse_time(value, now_micros());
    if (!since) return error_response(400, fmt::format("bad since '{}': expected {}", value, view::time_syntax_help));
  }
  Lease store(*this);
  ordered_json list = ordered_json::array();
  for (const JobStats& stats : store->stats(since)) list.push_back(view::stats_document(stats));
  return json_response(200, {{"stats", std::move(list)}});
}

Response Api::impact(const QueryParams& params) {
  // The bound of /v1/jobs' pages: one request must not make the server build an unbounded answer.
  constexpr std::size_t most_entities = 10000;
  const Micros now = now_micros();
  ImpactFilter filter = view::impact_filter(now);
  for (const auto& [key, value] : params) {
    if (std::string problem = view::set_impact_term(filter, key, value, now, key, most_entities); !problem.empty()) {
      return error_response(400, problem);
    }
  }
  if (std::string problem = view::impact_window_problem(filter, "since", "until"); !problem.empty()) {
    return error_response(400, problem);
  }
  Lease store(*this);
  return json_response(200, view::impact_document(filter, store->impact(filter)));
}

Response Api::put_schedule(const std::string& job, std::string_view body) {
  const auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return error_response(400, "expected a JSON object such as {\"every\": \"24h\", \"grace\": \"1h\"}");
  }
  Schedule schedule;
  schedule.job = job;
  for (const auto& [key, value] : parsed.items()) {
    if (key != "every" && key != "grace") return error_response(400, fmt::format("unknown field '{}'", key));
    const std::optional<Micros> length = value.is_string() ? view::parse_duration(value.get<std::string>()) : std::nullopt;
    if (!length || *length <= 0) return error_response(400, fmt::format("{} must be a duration such as \"24h\"", key));
    (key == "every" ? schedule.every : schedule.grace) = *length;
  }
  if (schedule.every <= 0) return error_response(400, "every is missing");
  if (job.empty() || job.size() > EventLimits::max_name_length) return error_response(400, "bad job class");
  // Rare writes: a connection of their own, so the tracker's writer is never involved.
  std::lock_guard lock(schedule_mutex_);
  open_store(options_.store_url)->register_schedule(schedule);
  return json_response(200, {{"job", job}, {"every_us", schedule.every}, {"grace_us", schedule.grace}});
}

Response Api::metrics() {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    Lease store(*this);
    std::vector<prometheus::MetricFamily> gauges = active_job_families(store->active_jobs(), now_micros());
    families.insert(families.end(), std::make_move_iterator(gauges.begin()), std::make_move_iterator(gauges.end()));
    std::vector<prometheus::MetricFamily> cron = schedule_families(store->schedules());
    families.insert(families.end(), std::make_move_iterator(cron.begin()), std::make_move_iterator(cron.end()));
  }
  return {200, prometheus::TextSerializer().Serialize(families), "text/plain; version=0.0.4; charset=utf-8"};
}

void Api::with_store(const std::function<void(Store&)>& read) {
  Lease store(*this);
  read(*store.operator->());
}

Response Api::health() {
  try {
    Lease store(*this);
    const int version = store->schema_version();
    (void)store->find_job("");  // a real read: a schema version alone may come from a cache
    return json_response(200, {{"status", "ok"}, {"store", store->location()}, {"schema_version", version}});
  } catch (const std::exception& error) {
    return json_response(503, {{"status", "store unavailable"}, {"error", error.what()}});
  }
}

bool Api::shutdown() noexcept {
  if (!tracker_) return true;
  tracker_->shutdown(options_.shutdown_timeout);
  // Every accepted event either committed or was a redelivery of one already stored.
  const TrackerCounters after = tracker_->counters();
  return after.dropped_store_error == 0 && after.stored + after.duplicates >= after.accepted;
}

}  // namespace jobtrail::server
