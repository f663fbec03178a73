// `jobtrail trace CORRELATION_ID`: the tree of jobs one request caused.

#include <algorithm>
#include <map>
#include <ostream>
#include <set>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

/// One job in drawing order, with what the tree needs to draw it.
struct TreeLine {
  const JobRecord* job = nullptr;
  std::size_t depth = 0;
  std::string prefix;  ///< "│  ├─ " and the like; empty for roots
  bool parent_missing = false;
};

/// Orders the jobs depth-first under their parents. A job whose parent is not in this
/// trace is a root; so is any job caught in a parent cycle, so that every job is drawn
/// exactly once whatever the events claim.
class TreeBuilder {
 public:
  explicit TreeBuilder(const std::vector<JobRecord>& jobs) : jobs_(jobs) {
    for (const JobRecord& job : jobs_) by_id_.emplace(job.job_id, &job);
    for (const JobRecord& job : jobs_) {
      if (has_parent_here(job)) children_[job.parent_job_id].push_back(&job);
    }
  }

  std::vector<TreeLine> lines() {
    for (const JobRecord& job : jobs_) {
      if (!has_parent_here(job)) visit(job, 0, "", "", !job.parent_job_id.empty());
    }
    // Whatever is left sits on a cycle: draw each remaining one as a root.
    for (const JobRecord& job : jobs_) {
      if (!drawn_.contains(job.job_id)) visit(job, 0, "", "", false);
    }
    return std::move(lines_);
  }

 private:
  bool has_parent_here(const JobRecord& job) const {
    return !job.parent_job_id.empty() && job.parent_job_id != job.job_id && by_id_.contains(job.parent_job_id);
  }

  void visit(const JobRecord& job, std::size_t depth, const std::string& own_prefix,
             const std::string& children_indent, bool parent_missing) {
    if (!drawn_.insert(job.job_id).second) return;
    lines_.push_back({&job, depth, own_prefix, parent_missing});
    const auto found = children_.find(job.job_id);
    if (found == children_.end()) return;
    std::vector<const JobRecord*> children;
    for (const JobRecord* child : found->second) {
      if (!drawn_.contains(child->job_id)) children.push_back(child);
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
      const bool last = i + 1 == children.size();
      visit(*children[i], depth + 1, children_indent + (last ? "└─ " : "├─ "),
            children_indent + (last ? "   " : "│  "), false);
    }
  }

  const std::vector<JobRecord>& jobs_;
  std::map<std::string, const JobRecord*> by_id_;
  std::map<std::string, std::vector<const JobRecord*>> children_;  // oldest first, as stored
  std::set<std::string> drawn_;
  std::vector<TreeLine> lines_;
};

std::string summary_line(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> counts;
  for (const State state : all_states()) {
    const auto count = std::count_if(jobs.begin(), jobs.end(), [state](const JobRecord& job) { return job.state == state; });
    if (count > 0) counts.push_back(fmt::format("{} {}", count, to_string(state)));
  }
  Micros first = jobs.front().first_event_at, last = jobs.front().last_event_at;
  for (const JobRecord& job : jobs) {
    first = std::min(first, job.first_event_at);
    last = std::max(last, job.last_event_at);
  }
  return fmt::format("{} job{}: {}; span {} ({} to {})", jobs.size(), jobs.size() == 1 ? "" : "s",
                     fmt::join(counts, ", "), format_duration(last - first), format_timestamp(first),
                     format_timestamp(last));
}

void print_table(const std::vector<JobRecord>& jobs, const std::vector<TreeLine>& lines, Micros now,
                 std::ostream& out) {
  Table table({"JOB", "CLASS", "STATE", "ATTEMPTS", "WAIT", "RUN", "FLAGS"},
              {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right, Align::left});
  for (const TreeLine& line : lines) {
    const JobRecord& job = *line.job;
    std::string flags = anomaly_flags(job);
    if (line.parent_missing) {
      if (!flags.empty()) flags += ",";
      flags += fmt::format("parent {} not recorded", job.parent_job_id);
    }
    table.add_row({line.prefix + job.job_id, or_dash(job.job), std::string(to_string(job.state)),
                   std::to_string(job.attempts), format_span(wait_span(job, now)),
                   format_span(run_span(job, now)), flags});
  }
  table.print(out);
  out << '\n' << summary_line(jobs) << '\n';
}

void print_json(const std::vector<TreeLine>& lines, Micros now, std::ostream& out) {
  for (const TreeLine& line : lines) {
    nlohmann::ordered_json job = job_json(*line.job, now);
    job["depth"] = line.depth;
    print_json_line(out, job);
  }
}

}  // namespace

CLI::App* setup_trace(CLI::App& app, TraceOptions& options) {
  CLI::App* trace = app.add_subcommand("trace", "The tree of jobs one request caused, with their timings.");
  trace->add_option("CORRELATION_ID", options.correlation_id, "The request's correlation ID.")->required();
  trace->footer(subcommand_footer(
      "Table: jobs under the job that enqueued them (oldest first), a job whose parent was\n"
      "never recorded at the top; WAIT is enqueue to start, RUN start to end of the latest\n"
      "attempt, a trailing + means still waiting or running; then a summary line.\n"
      "JSON: one object per job per line, in the same order, with \"depth\" (0 for a root)\n"
      "and \"parent_job_id\".\n"));
  return trace;
}

int run_trace(const GlobalOptions& global, const TraceOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobRecord> jobs = store->jobs_in_trace(options.correlation_id);
  if (jobs.empty()) {
    throw CliError(exit_not_found, fmt::format("no jobs with correlation ID '{}'", options.correlation_id));
  }
  const std::vector<TreeLine> lines = TreeBuilder(jobs).lines();
  if (global.format == OutputFormat::json) {
    print_json(lines, now, out);
  } else {
    print_table(jobs, lines, now, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
