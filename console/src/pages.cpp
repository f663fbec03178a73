// What each page shows, read from the store. Values go into the templates as they are: the
// templates escape every {{value}} (render.cpp), and links are built with percent_encode().

#include "pages.h"

#include <algorithm>
#include <map>
#include <set>
#include <span>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "jobtrail/console.h"
#include "render.h"
#include "jobtrail/view/impact_text.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/list_filter.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::console {
namespace {

std::string age(std::optional<Micros> since, Micros now) {
  return since ? view::format_duration(std::max<Micros>(0, now - *since)) : "-";
}


std::string error_text(const ErrorInfo& error) {
  if (error.error_class.empty()) return error.message;
  if (error.message.empty()) return error.error_class;
  return error.error_class + ": " + error.message;
}

std::string flags_of(const JobRecord& job) {
  std::string flags;
  for (const std::string& name : view::anomaly_names(job.anomalies)) flags += (flags.empty() ? "" : ", ") + name;
  return flags;
}

/// A query string of `params` ("?a=1&b=2"), each value percent-encoded; empty values dropped.
std::string query_of(const Params& params) {
  std::string query;
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    query += (query.empty() ? "?" : "&") + percent_encode(key) + "=" + percent_encode(value);
  }
  return query;
}

/// Rows of a job table. Written here rather than by the template: a trace of 5,000 jobs took
/// 600 ms through kainjow's data objects (each row a map of strings, copied on the way in;
/// malloc was most of the profile). Every text goes through escape_html(), as the template
/// would have done. `branches`, for the trace's tree: the tree's prefix of each row.
std::string job_rows(std::span<const JobRecord* const> jobs, Micros now, std::span<const std::string> branches = {}) {
  const bool tree = !branches.empty();
  std::string html;
  html.reserve(jobs.size() * 400);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobRecord& job = *jobs[i];
    const std::string state(to_string(job.state));
    html += "<tr><td";
    if (tree) html += " class=\"tree-cell\"><span class=\"branch\">" + escape_html(branches[i]) + "</span";
    html += "><a href=\"" + escape_html(job_url(job.job_id)) + "\">" + escape_html(job.job_id) + "</a></td>";
    html += "<td>" + escape_html(job.job.empty() ? "-" : job.job) + "</td>";
    if (!tree) html += "<td>" + escape_html(job.queue.empty() ? "-" : job.queue) + "</td>";
    html += "<td><span class=\"badge " + state + "\">" + state + "</span></td>";
    html += "<td class=\"n\">" + std::to_string(job.attempts) + "</td>";
    html += "<td class=\"n\">" + escape_html(view::format_span(view::wait_span(job, now))) + "</td>";
    html += "<td class=\"n\">" + escape_html(view::format_span(view::run_span(job, now))) + "</td>";
    if (!tree) html += "<td>" + escape_html(view::format_timestamp(job.first_event_at)) + "</td>";
    html += "<td>" + escape_html(flags_of(job)) + "</td>";
    if (!tree) html += "<td class=\"error\">" + escape_html(error_text(job.last_error)) + "</td>";
    html += "</tr>\n";
  }
  return html;
}

std::string jobs_table(const std::vector<JobRecord>& jobs, Micros now) {
  std::vector<const JobRecord*> rows;
  rows.reserve(jobs.size());
  for (const JobRecord& job : jobs) rows.push_back(&job);
  Data data;
  data.set("rows", job_rows(rows, now));
  return render("jobs_table", data);
}

Data anomaly_row(const AnomalyRecord& anomaly) {
  Data row;
  row.set("job_id", anomaly.job_id);
  row.set("url", job_url(anomaly.job_id));
  row.set("kind", std::string(to_string(anomaly.kind)));
  row.set("other_job_id", anomaly.other_job_id);
  if (!anomaly.other_job_id.empty()) row.set("other_url", job_url(anomaly.other_job_id));
  row.set("detail", anomaly.detail);
  row.set("at", view::format_timestamp(anomaly.at));
  return row;
}

/// Most rows on one page: jobs of a search, entities of a blast radius (each with its newest
/// jobs). GET /v1/impact allows 10,000 entities, but a page is for a person to read.
constexpr std::size_t max_page = 1000;

/// Most jobs whose tags a blast-radius page reads unless asked for all: the newest of a busy
/// window, read in tens of milliseconds (docs/console.md, "Speed").
constexpr std::size_t page_impact_jobs = 10000;

bool is_filter_term(std::string_view key) {
  for (const std::string_view term :
       {"state", "job", "queue", "entity", "since", "until", "anomalies", "limit", "cursor"}) {
    if (key == term) return true;
  }
  return false;
}

/// `params` without any value of `key`: the same page with that one term dropped or replaced.
Params without(const Params& params, std::string_view key) {
  Params kept;
  for (const auto& [name, value] : params) {
    if (name != key) kept.emplace_back(name, value);
  }
  return kept;
}

/// The first value of `key` in `params`, or "".
std::string param(const Params& params, std::string_view key) {
  for (const auto& [name, value] : params) {
    if (name == key) return value;
  }
  return {};
}

Data check_row(const CheckResultRecord& result) {
  Data row;
  row.set("check", result.check);
  row.set("url", check_url(result.check));
  row.set("run_id", std::to_string(result.run_id));
  row.set("status", std::string(to_string(result.status)));
  row.set("violations", std::to_string(result.violations));
  row.set("new_violations", std::to_string(result.new_violations));
  row.set("still_failing", std::to_string(std::max<std::int64_t>(0, result.violations - result.new_violations)));
  row.set("resolved", std::to_string(result.resolved));
  row.set("started_at", view::format_timestamp(result.started_at));
  row.set("duration", view::format_duration(result.duration));
  set_text(row, "error", result.error);
  row.set("complete", result.fingerprints_complete);
  return row;
}

/// A job as the templates link it: {{job_id}} and its page's {{url}}.
Data job_link(const std::string& job_id) {
  Data job;
  job.set("job_id", job_id);
  job.set("url", job_url(job_id));
  return job;
}

/// Jobs linked from one failing row of a check with `entity:`, as many as `jobtrail check`
/// lists by default (checker.h, linked_jobs).
constexpr std::size_t jobs_per_entity_row = 5;

/// The latest result of a check with its failing rows: new or failing since when, the row's
/// columns, and its jobs as links: those it names (a job_id column, as the built-in checks
/// have), and for a check with `entity:` the newest jobs that touched the row's entity.
std::string check_result_section(Store& store, const CheckResultRecord& result) {
  Data data = check_row(result);
  Data rows = list();
  std::int64_t without_sample = 0;
  for (const CheckViolation& violation : result.failing) {
    if (violation.sample.empty()) {
      ++without_sample;
      continue;
    }
    Data row;
    const bool is_new = violation.first_seen_at >= result.started_at;
    row.set("is_new", is_new);
    row.set("since", view::format_timestamp(violation.first_seen_at));
    Data columns = list();
    Data jobs = list();
    const auto sample = nlohmann::json::parse(violation.sample, nullptr, false);
    if (sample.is_object()) {
      for (const auto& [name, value] : sample.items()) {
        const std::string text = value.is_string() ? value.get<std::string>()
                                                   : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        Data column;
        column.set("name", name);
        column.set("value", text);
        columns.push_back(column);
        if (name == "job_id" && value.is_string()) jobs.push_back(job_link(text));
        if (name == "entity" && value.is_string() && is_valid_entity(text) && violation.entity.empty()) {
          row.set("entity", text);
          row.set("entity_url", entity_url(text));
        }
      }
      if (is_valid_entity(violation.entity)) {
        row.set("entity", violation.entity);
        row.set("entity_url", entity_url(violation.entity));
        JobFilter touched;
        touched.entity = violation.entity;
        touched.limit = jobs_per_entity_row;
        for (const JobRecord& linked : store.list_jobs(touched)) jobs.push_back(job_link(linked.job_id));
      }
    } else {
      Data column;
      column.set("name", "");
      column.set("value", violation.sample);
      columns.push_back(column);
    }
    row.set("columns", columns);
    row.set("jobs", jobs);
    rows.push_back(row);
  }
  data.set("rows", rows);
  data.set("has_rows", !result.failing.empty());
  if (without_sample > 0) data.set("more_rows", std::to_string(without_sample));
  return render("check_result", data);
}

}  // namespace

Page problem_page(int status, const std::string& heading, const std::string& message, const std::string& link_url,
                  const std::string& link_text) {
  Data data;
  data.set("heading", heading);
  data.set("message", message);
  if (!link_url.empty()) {
    data.set("link_url", link_url);
    data.set("link_text", link_text);
  }
  return {status, heading, render("problem", data), false};
}

Throughput throughput(Store& store, Micros window, int slice_count, Micros now) {
  Throughput result;
  const Micros buckets = (window + tally_bucket_length * slice_count - 1) / (tally_bucket_length * slice_count);
  result.slice_length = std::max<Micros>(1, buckets) * tally_bucket_length;
  const Micros end = tally_bucket_start(now) + tally_bucket_length;
  std::vector<Micros> bounds;
  for (int i = 0; i <= slice_count; ++i) bounds.push_back(end - result.slice_length * (slice_count - i));
  // Finished: succeeded, failed or dead; failed: the red part of a bar.
  for (const JobTally& count : store.tally(bounds)) {
    const bool failed = count.state == State::failed || count.state == State::dead;
    if (!failed && count.state != State::succeeded) continue;
    if (result.classes.empty() || result.classes.back().job != count.job) {
      ClassSeries one{count.job, 0, 0, {}};
      for (int i = 0; i < slice_count; ++i) one.slices.push_back({bounds[static_cast<std::size_t>(i)], 0, 0});
      result.classes.push_back(std::move(one));
    }
    ClassSeries& one = result.classes.back();
    Slice& slice = one.slices[count.slice];
    slice.finished += count.jobs;
    one.finished += count.jobs;
    if (failed) slice.failed += count.jobs, one.failed += count.jobs;
  }
  return result;
}

Page overview_page(Store& store, const Params& params, Micros now) {
  Data data;
  Data active = list();
  const std::vector<ActiveJobs> pairs = store.active_jobs();
  for (const ActiveJobs& pair : pairs) {
    Data row;
    row.set("job", pair.job.empty() ? "-" : pair.job);
    row.set("queue", pair.queue.empty() ? "-" : pair.queue);
    row.set("running", std::to_string(pair.running));
    row.set("waiting", std::to_string(pair.waiting));
    row.set("oldest_running", age(pair.oldest_running_since, now));
    row.set("oldest_waiting", age(pair.oldest_waiting_since, now));
    row.set("running_url", "/ui/jobs" + query_of({{"state", "started"}, {"job", pair.job}, {"queue", pair.queue}}));
    row.set("waiting_url", "/ui/jobs" + query_of({{"state", "enqueued"}, {"job", pair.job}, {"queue", pair.queue}}));
    active.push_back(row);
  }
  data.set("active", active);
  data.set("has_active", !pairs.empty());

  // Throughput and failures over time, per class: the jobs first seen in each slice.
  Micros window = 24LL * 3600 * 1000000;
  if (const std::string asked = param(params, "window"); !asked.empty()) {
    // At most a year: the chart stays twelve slices, and the bounds stay far from overflowing.
    constexpr Micros year = 366LL * 24 * 3600 * 1000000;
    if (const std::optional<Micros> length = view::parse_duration(asked); length && *length > 0) {
      window = std::min(*length, year);
    }
  }
  constexpr int slice_count = 12;
  // A store read as it is, not upgraded (older than schema 5, read-only), has no kept counts:
  // the chart says so, and the rest of the overview still answers.
  Throughput chart;
  try {
    chart = throughput(store, window, slice_count, now);
  } catch (const StoreError& error) {
    data.set("chart_problem", std::string(error.what()));
  }
  Data classes = list();
  for (const ClassSeries& one : chart.classes) {
    Data item;
    item.set("job", one.job.empty() ? "-" : one.job);
    item.set("url", "/ui/jobs" + query_of({{"job", one.job}}));
    item.set("finished", std::to_string(one.finished));
    item.set("failure_rate", fmt::format("{:.1f}%", 100.0 * static_cast<double>(one.failed) / static_cast<double>(one.finished)));
    item.set("svg", throughput_svg(one.slices, chart.slice_length));
    classes.push_back(item);
  }
  data.set("classes", classes);
  data.set("has_classes", !chart.classes.empty());
  data.set("window", view::format_duration(chart.slice_length * slice_count));
  data.set("bucket", view::format_duration(chart.slice_length));
  data.set("buckets", std::to_string(slice_count));

  Data checks = list();
  const std::vector<std::string> names = store.check_names();
  for (const std::string& name : names) {
    if (const auto result = store.check_history(name, 1); !result.empty()) checks.push_back(check_row(result.front()));
  }
  data.set("checks", checks);
  data.set("has_checks", !names.empty());

  Data anomalies = list();
  const std::vector<AnomalyRecord> flagged = store.anomalies("", 10);
  for (const AnomalyRecord& anomaly : flagged) anomalies.push_back(anomaly_row(anomaly));
  data.set("anomalies", anomalies);
  data.set("has_anomalies", !flagged.empty());

  JobFilter dead_filter;
  dead_filter.states = {State::dead};
  dead_filter.limit = 10;
  const std::vector<JobRecord> dead = store.list_jobs(dead_filter);
  data.set("has_dead", !dead.empty());
  data.set("dead_table", jobs_table(dead, now));
  return {200, "Overview", render("overview", data), true};
}

Page job_page(Store& store, const std::string& job_id, Micros now) {
  const std::optional<JobRecord> found = store.find_job(job_id);
  if (!found) return problem_page(404, "No such job", fmt::format("No job with ID '{}' is in the store.", job_id));
  const JobRecord& job = *found;
  Data data;
  data.set("job_id", job.job_id);
  data.set("job", job.job.empty() ? "-" : job.job);
  data.set("queue", job.queue.empty() ? "-" : job.queue);
  data.set("state", std::string(to_string(job.state)));
  data.set("attempts", std::to_string(job.attempts));
  data.set("wait", view::format_span(view::wait_span(job, now)));
  data.set("run", view::format_span(view::run_span(job, now)));
  data.set("first_seen", view::format_timestamp(job.first_event_at));
  data.set("last_seen", view::format_timestamp(job.last_event_at));
  set_text(data, "worker", job.worker);
  set_text(data, "idempotency_key", job.idempotency_key);
  if (!job.correlation_id.empty()) {
    data.set("correlation_id", job.correlation_id);
    data.set("trace_url", trace_url(job.correlation_id));
  }
  if (!job.parent_job_id.empty()) {
    data.set("parent_job_id", job.parent_job_id);
    data.set("parent_url", job_url(job.parent_job_id));
  }
  data.set("has_error", !job.last_error.empty());
  data.set("error_class", job.last_error.error_class);
  data.set("error_message", job.last_error.message);
  set_text(data, "backtrace", job.last_error.backtrace);

  Data anomalies = list();
  const std::vector<AnomalyRecord> flagged = store.anomalies(job.job_id, 100);
  for (const AnomalyRecord& anomaly : flagged) anomalies.push_back(anomaly_row(anomaly));
  data.set("anomalies", anomalies);
  data.set("has_anomalies", !flagged.empty());

  Data events = list();
  for (const EventRecord& event : store.events_of(job.job_id)) {
    Data row;
    row.set("at", view::format_timestamp(event.at));
    row.set("state", std::string(to_string(event.state)));
    row.set("attempt", event.attempt > 0 ? std::to_string(event.attempt) : "-");
    row.set("worker", event.worker);
    set_text(row, "error_class", event.error.error_class);
    row.set("error_message", event.error.message);
    set_text(row, "backtrace", event.error.backtrace);
    events.push_back(row);
  }
  data.set("events", events);

  Data entities = list();
  for (const std::string& entity : job.entities) {
    Data item;
    item.set("entity", entity);
    item.set("url", entity_url(entity));
    entities.push_back(item);
  }
  data.set("entities", entities);
  data.set("has_entities", !job.entities.empty());

  // Children carry their parent's correlation ID, so they are in its trace.
  std::vector<JobRecord> children;
  if (!job.correlation_id.empty()) {
    for (JobRecord& other : store.jobs_in_trace(job.correlation_id)) {
      if (other.parent_job_id == job.job_id) children.push_back(std::move(other));
    }
  }
  data.set("has_children", !children.empty());
  data.set("children_table", jobs_table(children, now));
  return {200, "Job " + job.job_id, render("job", data), !is_final(job.state)};
}

Page trace_page(Store& store, const std::string& correlation_id, Micros now) {
  const std::vector<JobRecord> jobs = store.jobs_in_trace(correlation_id);
  if (jobs.empty()) {
    return problem_page(404, "No such trace", fmt::format("No job has the correlation ID '{}'.", correlation_id));
  }
  // The tree: children under their parent (oldest first, as the store lists them); a job
  // whose parent is not in the trace is a root.
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < jobs.size(); ++i) index.emplace(jobs[i].job_id, i);
  std::vector<std::vector<std::size_t>> children(jobs.size());
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto parent = index.find(jobs[i].parent_job_id);
    if (jobs[i].parent_job_id.empty() || parent == index.end() || parent->second == i) {
      roots.push_back(i);
    } else {
      children[parent->second].push_back(i);
    }
  }
  std::vector<const JobRecord*> ordered;
  std::vector<std::string> branches;
  std::vector<bool> visited(jobs.size(), false);
  // Depth first, without recursion: a trace may be thousands deep.
  struct Step {
    std::size_t job;
    std::string prefix;
    bool last;
    bool root;
  };
  std::vector<Step> stack;
  for (std::size_t r = roots.size(); r-- > 0;) stack.push_back({roots[r], "", r + 1 == roots.size(), true});
  // A parent cycle (a names b, b names a) leaves jobs no root reaches: they become roots.
  for (std::size_t pass = 0; pass < 2; ++pass) {
    while (!stack.empty()) {
      Step step = std::move(stack.back());
      stack.pop_back();
      if (visited[step.job]) continue;
      visited[step.job] = true;
      ordered.push_back(&jobs[step.job]);
      branches.push_back(step.root ? "" : step.prefix + (step.last ? "└─ " : "├─ "));
      const std::string child_prefix = step.root ? "" : step.prefix + (step.last ? "   " : "│  ");
      const auto& kids = children[step.job];
      for (std::size_t k = kids.size(); k-- > 0;) stack.push_back({kids[k], child_prefix, k + 1 == kids.size(), false});
    }
    for (std::size_t i = jobs.size(); i-- > 0;) {
      if (!visited[i]) stack.push_back({i, "", true, true});
    }
  }
  bool live = false;
  Micros start = jobs.front().first_event_at;
  Micros end = start;
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    const JobRecord& job = *ordered[i];
    live = live || !is_final(job.state);
    start = std::min(start, job.first_event_at);
    end = std::max(end, job.last_event_at);
  }
  Data data;
  data.set("correlation_id", correlation_id);
  data.set("count", std::to_string(jobs.size()));
  data.set("start", view::format_timestamp(start));
  data.set("span", view::format_duration((live ? std::max(end, now) : end) - start) + (live ? "+" : ""));
  // The big values by operator[] and a move: set() and push_back() copy (a 5,000-job trace's
  // rows and SVG are 3 MB).
  Data tree_blocks = list();
  for (std::size_t first = 0; first < ordered.size(); first += rows_per_block) {
    const std::size_t count = std::min(rows_per_block, ordered.size() - first);
    Data block;
    block["rows"] = job_rows(std::span(ordered).subspan(first, count), now, std::span(branches).subspan(first, count));
    tree_blocks.push_back(block);
  }
  data["tree_blocks"] = std::move(tree_blocks);
  // Blocks laid out apart share their columns' widths only with a fixed table layout.
  data.set("blocked", ordered.size() > rows_per_block);
  data["waterfall"] = waterfall_svg(ordered, now);
  return {200, "Trace " + correlation_id, render("trace", data), live};
}

Page search_page(Store& store, const Params& params, Micros now, const std::string& entity) {
  JobFilter filter;
  std::string problem;
  Data data;
  if (!entity.empty() && !is_valid_entity(entity)) {
    return problem_page(400, "Bad entity", fmt::format("Bad entity '{}': expected type:id like user:42.", entity));
  }
  const std::string base_url = entity.empty() ? std::string("/ui/jobs") : entity_url(entity);
  // The form sends every field, empty ones too: an empty value means "any". The terms are
  // read as `jobtrail ls` and GET /v1/jobs read them (the view layer's one reading), the
  // cursor of a next-page link too, so a page's URL names the same jobs as `ls --cursor`.
  for (const auto& [key, value] : params) {
    if (value.empty() || !is_filter_term(key)) continue;
    // A checkbox says "on"; the filter's reading knows true/false/1/0.
    const std::string term_value = key == "anomalies" && value == "on" ? "1" : value;
    if (std::string why = view::set_filter_term(filter, key, term_value, now, key, max_page); !why.empty()) {
      if (key == "cursor") {
        // Only a link of this console carries a cursor, so a bad one is an edited or truncated
        // link: the view layer's reason speaks of ls's note; a person here needs the first page.
        return problem_page(400, "Bad page link",
                            fmt::format("The cursor '{}' is not a page link this console made (edited or cut "
                                        "short?). The first page of the same search is below.",
                                        value),
                            base_url + query_of(without(params, "cursor")), "First page");
      }
      problem = std::move(why);
    }
    // Other parameters (a bookmarklet's, a tracker's) are ignored, not refused: a person is
    // looking, and the page still answers what it can.
  }
  if (!entity.empty()) filter.entity = entity;
  Data states = list();
  for (const State state : all_states()) {
    if (state == State::heartbeat) continue;
    Data option;
    option.set("name", std::string(to_string(state)));
    option.set("selected", std::find(filter.states.begin(), filter.states.end(), state) != filter.states.end());
    states.push_back(option);
  }
  data.set("states", states);
  data.set("show_form", entity.empty());
  data.set("heading", entity.empty() ? std::string("Jobs") : "Everything that touched " + entity);
  for (const char* key : {"job", "queue", "entity", "since", "until"}) data.set(key, param(params, key));
  data.set("anomalies", filter.anomalies_only);
  data.set("limit", std::to_string(filter.limit));
  const int status = problem.empty() ? 200 : 400;
  if (!problem.empty()) {
    data.set("problem", problem);
    return {status, "Jobs", render("search", data), false};
  }
  // The store's keyset page: jobs that share a first-seen time are neither skipped nor shown
  // twice, and the count is bounded (list_page), as for ls and GET /v1/jobs.
  const JobPage page = list_page(store, filter);
  const bool from_cursor = filter.after.has_value();
  data.set("has_jobs", !page.jobs.empty());
  data.set("table", jobs_table(page.jobs, now));
  if (!page.jobs.empty()) data.set("count", view::page_count(page) + (from_cursor ? " from this page on" : ""));
  if (from_cursor) data.set("first_url", base_url + query_of(without(params, "cursor")));
  if (page.partial()) {
    // The next page: the same filters, from the cursor after this page's last job.
    Params next = without(params, "cursor");
    next.emplace_back("cursor", page.next_cursor);
    data.set("next_url", base_url + query_of(next));
  }
  if (entity.empty()) {
    // The entities the same jobs touched: the filters `impact` shares with the list (its
    // default since applies when the search has none).
    data.set("impact_url", "/ui/impact" + query_of({{"job", param(params, "job")},
                                                    {"state", param(params, "state")},
                                                    {"since", param(params, "since")},
                                                    {"until", param(params, "until")}}));
  }
  data.set("paging", from_cursor || page.partial());
  data.set("both", from_cursor && page.partial());
  bool live = false;
  for (const JobRecord& job : page.jobs) live = live || !is_final(job.state);
  return {200, entity.empty() ? "Jobs" : entity, render("search", data), live};
}

Page impact_page(Store& store, const Params& params, Micros now) {
  ImpactFilter filter = view::impact_filter(now);
  // A page reads the tags of a bounded number of jobs, however busy the window (max_jobs=0
  // asks for all of them); the count of matching jobs stays exact.
  filter.max_jobs = page_impact_jobs;
  std::string problem;
  // The terms of `jobtrail impact` and GET /v1/impact, read by the view layer as they read
  // them; empty fields mean "any" (since: its default), other parameters are ignored.
  for (const auto& [key, value] : params) {
    if (value.empty() || !view::is_impact_term(key)) continue;
    if (std::string why = view::set_impact_term(filter, key, value, now, key, max_page); !why.empty()) {
      problem = std::move(why);
    }
  }
  if (problem.empty()) problem = view::impact_window_problem(filter, "since", "until");
  Data data;
  for (const char* key : {"job", "state", "type", "since", "until"}) data.set(key, param(params, key));
  data.set("limit", std::to_string(filter.limit));
  data.set("default_since", std::string(view::default_impact_since));
  if (!problem.empty()) {
    data.set("problem", problem);
    return {400, "Blast radius", render("impact", data), false};
  }
  const ImpactReport report = store.impact(filter);
  data.set("scope", view::impact_scope(filter));
  data.set("summary", view::impact_summary(filter, report));
  if (!report.complete()) {
    Params every = without(params, "max_jobs");
    every.emplace_back("max_jobs", "0");
    data.set("read_all_url", "/ui/impact" + query_of(every));
    data.set("read_all_text", fmt::format("read all {} jobs", report.matching_jobs));
  }
  Data entities = list();
  for (const EntityImpact& entity : report.entities) {
    Data row;
    row.set("entity", entity.entity);
    row.set("url", entity_url(entity.entity));
    row.set("jobs", std::to_string(entity.jobs));
    row.set("first_at", view::format_timestamp(entity.first_at));
    row.set("last_at", view::format_timestamp(entity.last_at));
    Data jobs = list();
    for (const std::string& id : entity.job_ids) jobs.push_back(job_link(id));
    row.set("job_ids", jobs);
    const std::int64_t more = entity.jobs - static_cast<std::int64_t>(entity.job_ids.size());
    if (more > 0) row.set("more", std::to_string(more));
    entities.push_back(row);
  }
  data.set("entities", entities);
  data.set("has_entities", !report.entities.empty());
  if (const std::string shown = view::impact_shown(report); !shown.empty()) {
    data.set("shown", shown);
    // The same filters with room for every entity, as far as one page goes.
    const bool fits = report.entity_count <= static_cast<std::int64_t>(max_page);
    Params all = without(params, "limit");
    all.emplace_back("limit", std::to_string(fits ? report.entity_count : static_cast<std::int64_t>(max_page)));
    data.set("all_url", "/ui/impact" + query_of(all));
    data.set("all_text", fits ? std::string("show them all") : fmt::format("show the first {}", max_page));
  }
  data.set("untagged", report.matching_jobs > 0 && report.tagged_jobs == 0 && filter.entity_type.empty());
  // The jobs behind the counts: the search with the same filters (the default since spelled out).
  Params search{{"job", filter.job}, {"state", param(params, "state")},
                {"since", filter.since ? view::format_rfc3339(*filter.since) : ""}, {"until", param(params, "until")}};
  data.set("jobs_url", "/ui/jobs" + query_of(search));
  return {200, "Blast radius", render("impact", data), false};
}

Page checks_page(Store& store) {
  Data data;
  Data checks = list();
  const std::vector<std::string> names = store.check_names();
  for (const std::string& name : names) {
    if (const std::optional<CheckResultRecord> result = store.last_check_result(name)) {
      Data item;
      item.set("section", check_result_section(store, *result));
      checks.push_back(item);
    }
  }
  data.set("checks", checks);
  data.set("has_checks", !names.empty());
  return {200, "Checks", render("checks", data), false};
}

Page check_page(Store& store, const std::string& check) {
  const std::optional<CheckResultRecord> latest = store.last_check_result(check);
  if (!latest) return problem_page(404, "No such check", fmt::format("No run of a check named '{}' is stored.", check));
  Data data;
  data.set("check", check);
  data.set("latest", check_result_section(store, *latest));
  Data history = list();
  for (const CheckResultRecord& result : store.check_history(check, 100)) history.push_back(check_row(result));
  data.set("history", history);
  return {200, "Check " + check, render("check", data), false};
}

}  // namespace jobtrail::console
