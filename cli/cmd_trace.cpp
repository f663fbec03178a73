// `jobtrail trace CORRELATION_ID`: the tree of jobs one request caused.

#include <algorithm>
#include <chrono>
#include <map>
#include <iostream>
#include <set>
#include <thread>

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

// Beyond this depth the tree lines stop growing and the depth is shown as a number: a
// 2,000-deep chain otherwise pads every line of the table to 6,000 columns.
constexpr std::size_t max_drawn_depth = 16;
// Parents outside the trace are looked up one by one (an index look-up each); past this many
// distinct ones the rest are reported without a look-up.
constexpr std::size_t max_parent_lookups = 20;
// Members of a parent cycle named in its flag; longer cycles are summarised.
constexpr std::size_t max_cycle_names = 6;

/// How a job relates to its parent, as trace reports it.
enum class ParentLink { none, in_trace, other_trace, elsewhere, not_recorded, not_looked_up, self, cycle };

std::string_view link_name(ParentLink link) {
  switch (link) {
    case ParentLink::none: return "none";
    case ParentLink::in_trace: return "in_trace";
    case ParentLink::other_trace: return "other_trace";
    case ParentLink::elsewhere: return "no_trace";
    case ParentLink::not_recorded: return "not_recorded";
    case ParentLink::not_looked_up: return "not_looked_up";
    case ParentLink::self: return "self";
    case ParentLink::cycle: return "cycle";
  }
  return "none";
}

/// One job in drawing order, with what the tree needs to draw it.
struct TreeLine {
  const JobRecord* job = nullptr;
  std::size_t depth = 0;
  std::string prefix;  ///< "│  ├─ " and the like; empty for roots. No job: a note of hidden jobs
  ParentLink link = ParentLink::none;
  std::string parent_trace;  ///< the parent's correlation ID when it is in another trace
  std::string cycle;         ///< for the job a cycle is drawn from: its members
  std::size_t hidden_below = 0;  ///< descendants not drawn (--depth, --width)
  std::string hidden_prefix;     ///< where the "hidden" note goes
};

/// What the parents outside the trace turned out to be.
struct OutsideParent {
  ParentLink link = ParentLink::not_recorded;
  std::string correlation_id;
};

struct Limits {
  std::optional<std::size_t> depth;  ///< deepest level drawn (0: roots only)
  std::optional<std::size_t> width;  ///< children drawn per job
};

/// Orders the jobs depth-first under their parents, each exactly once whatever the events
/// claim. A job whose parent is not in this trace is a root; so is a self-parent. Jobs on a
/// parent cycle have no root: each cycle is drawn from its oldest member, which is flagged.
/// Iterative, so a chain of any depth cannot overflow the stack.
class TreeBuilder {
 public:
  TreeBuilder(const std::vector<JobRecord>& jobs, Limits limits) : jobs_(jobs), limits_(limits) {
    for (std::size_t i = 0; i < jobs_.size(); ++i) index_.emplace(jobs_[i].job_id, i);
    for (const JobRecord& job : jobs_) {
      if (has_parent_here(job)) children_[job.parent_job_id].push_back(&job);
    }
  }

  std::vector<TreeLine> lines(const std::map<std::string, OutsideParent>& outside) {
    for (const JobRecord& job : jobs_) {
      if (has_parent_here(job)) continue;
      TreeLine root{&job, 0, "", ParentLink::none, "", "", 0, ""};
      if (job.parent_job_id == job.job_id) {
        root.link = ParentLink::self;
      } else if (!job.parent_job_id.empty()) {
        const auto found = outside.find(job.parent_job_id);
        root.link = found == outside.end() ? ParentLink::not_looked_up : found->second.link;
        if (found != outside.end()) root.parent_trace = found->second.correlation_id;
      }
      draw_from(std::move(root));
    }
    // Whatever is left hangs off a parent cycle.
    for (const JobRecord& job : jobs_) {
      if (drawn_.contains(job.job_id)) continue;
      std::vector<const JobRecord*> cycle = cycle_through(job);
      const JobRecord* entry = *std::min_element(cycle.begin(), cycle.end(), [this](const auto* a, const auto* b) {
        return index_.at(a->job_id) < index_.at(b->job_id);
      });
      // Name the members from the entry, each followed by its parent, back to the entry.
      std::vector<std::string> names;
      const JobRecord* at = entry;
      do {
        names.push_back(at->job_id);
        at = &jobs_[index_.at(at->parent_job_id)];
      } while (at != entry && names.size() < max_cycle_names);
      std::string text = fmt::format("{}", fmt::join(names, " → "));
      text += at == entry ? fmt::format(" → {}", entry->job_id) : fmt::format(" → … ({} jobs)", cycle.size());
      draw_from({entry, 0, "", ParentLink::cycle, "", std::move(text), 0, ""});
    }
    return std::move(lines_);
  }

  std::size_t hidden() const noexcept { return hidden_; }

 private:
  bool has_parent_here(const JobRecord& job) const {
    return !job.parent_job_id.empty() && job.parent_job_id != job.job_id && index_.contains(job.parent_job_id);
  }

  /// The cycle that following `start`'s parents ends in (every job left has a parent here).
  std::vector<const JobRecord*> cycle_through(const JobRecord& start) const {
    std::map<std::string, std::size_t> seen;
    std::vector<const JobRecord*> path;
    const JobRecord* at = &start;
    while (!seen.contains(at->job_id)) {
      seen.emplace(at->job_id, path.size());
      path.push_back(at);
      at = &jobs_[index_.at(at->parent_job_id)];
    }
    return {path.begin() + static_cast<std::ptrdiff_t>(seen.at(at->job_id)), path.end()};
  }

  std::vector<const JobRecord*> undrawn_children(const JobRecord& job) const {
    std::vector<const JobRecord*> result;
    const auto found = children_.find(job.job_id);
    if (found == children_.end()) return result;
    for (const JobRecord* child : found->second) {
      if (!drawn_.contains(child->job_id)) result.push_back(child);
    }
    return result;
  }

  /// Marks `job` and everything below it as seen without drawing them; returns how many.
  std::size_t hide(const JobRecord& job) {
    std::size_t count = 0;
    std::vector<const JobRecord*> stack{&job};
    while (!stack.empty()) {
      const JobRecord* next = stack.back();
      stack.pop_back();
      if (!drawn_.insert(next->job_id).second) continue;
      ++count;
      for (const JobRecord* child : undrawn_children(*next)) stack.push_back(child);
    }
    return count;
  }

  /// Draws `root` and what hangs below it. A job with hidden descendants gets a note line
  /// (a TreeLine without a job) after the last of its children drawn.
  void draw_from(TreeLine root) {
    struct Pending {
      TreeLine line;
      std::string children_indent;
    };
    std::vector<Pending> stack;
    stack.push_back({std::move(root), ""});
    while (!stack.empty()) {
      Pending pending = std::move(stack.back());
      stack.pop_back();
      if (pending.line.job == nullptr) {
        lines_.push_back(std::move(pending.line));
        continue;
      }
      if (!drawn_.insert(pending.line.job->job_id).second) continue;
      const std::size_t depth = pending.line.depth;
      std::vector<const JobRecord*> children = undrawn_children(*pending.line.job);
      lines_.push_back(std::move(pending.line));
      const std::size_t own = lines_.size() - 1;
      std::size_t shown = children.size();
      if (limits_.depth && depth >= *limits_.depth) shown = 0;
      if (limits_.width) shown = std::min(shown, *limits_.width);
      std::size_t hidden = 0;
      for (std::size_t i = shown; i < children.size(); ++i) hidden += hide(*children[i]);
      if (hidden > 0) {
        lines_[own].hidden_below = hidden;
        hidden_ += hidden;
        TreeLine note;
        note.depth = depth + 1;
        note.hidden_below = hidden;
        note.hidden_prefix = pending.children_indent + "└╌ ";
        stack.push_back({std::move(note), ""});
      }
      // Pushed last child first, so the oldest is drawn first.
      for (std::size_t i = shown; i-- > 0;) {
        const bool last = i + 1 == shown && hidden == 0;
        const std::size_t child_depth = depth + 1;
        std::string prefix, indent;
        if (child_depth <= max_drawn_depth) {
          prefix = pending.children_indent + (last ? "└─ " : "├─ ");
          indent = pending.children_indent + (last ? "   " : "│  ");
        } else {
          // The indent stays as it was at max_drawn_depth; the depth is written out.
          prefix = pending.children_indent + fmt::format("[{}] ", child_depth) + (last ? "└─ " : "├─ ");
          indent = pending.children_indent;
        }
        stack.push_back({{children[i], child_depth, std::move(prefix), ParentLink::in_trace, "", "", 0, ""},
                         std::move(indent)});
      }
    }
  }

  const std::vector<JobRecord>& jobs_;
  Limits limits_;
  std::map<std::string, std::size_t> index_;  // job ID -> position, oldest first
  std::map<std::string, std::vector<const JobRecord*>> children_;  // oldest first, as stored
  std::set<std::string> drawn_;
  std::vector<TreeLine> lines_;
  std::size_t hidden_ = 0;
};

/// Looks up the parents that are not in the trace: recorded in another trace, recorded
/// without one, or never recorded.
std::map<std::string, OutsideParent> outside_parents(Store& store, const std::vector<JobRecord>& jobs) {
  std::set<std::string> here;
  for (const JobRecord& job : jobs) here.insert(job.job_id);
  std::map<std::string, OutsideParent> result;
  for (const JobRecord& job : jobs) {
    if (job.parent_job_id.empty() || here.contains(job.parent_job_id) || result.contains(job.parent_job_id)) continue;
    if (result.size() >= max_parent_lookups) break;
    OutsideParent parent;
    if (const std::optional<JobRecord> found = store.find_job(job.parent_job_id)) {
      parent.link = found->correlation_id.empty() ? ParentLink::elsewhere : ParentLink::other_trace;
      parent.correlation_id = found->correlation_id;
    }
    result.emplace(job.parent_job_id, parent);
  }
  return result;
}

std::string link_flag(const TreeLine& line) {
  const JobRecord& job = *line.job;
  switch (line.link) {
    case ParentLink::other_trace:
      return fmt::format("parent {} is in trace {} (jobtrail trace {})", job.parent_job_id, line.parent_trace,
                         line.parent_trace);
    case ParentLink::elsewhere:
      return fmt::format("parent {} has no trace (jobtrail show {})", job.parent_job_id, job.parent_job_id);
    case ParentLink::not_recorded: return fmt::format("parent {} not recorded", job.parent_job_id);
    case ParentLink::not_looked_up: return fmt::format("parent {} outside this trace", job.parent_job_id);
    case ParentLink::self: return "its own parent";
    case ParentLink::cycle: return fmt::format("parent cycle {}", line.cycle);
    case ParentLink::none:
    case ParentLink::in_trace: return "";
  }
  return "";
}

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

std::string hidden_note(std::size_t hidden) {
  return fmt::format("{} job{} below not shown", hidden, hidden == 1 ? "" : "s");
}

void print_table(const std::vector<JobRecord>& jobs, const std::vector<TreeLine>& lines, std::size_t hidden,
                 Micros now, std::ostream& out) {
  Table table({"JOB", "CLASS", "STATE", "ATTEMPTS", "WAIT", "RUN", "FLAGS"},
              {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right, Align::left});
  for (const TreeLine& line : lines) {
    if (line.job == nullptr) {
      table.add_detail_line(line.hidden_prefix + "… " + hidden_note(line.hidden_below));
      continue;
    }
    const JobRecord& job = *line.job;
    std::string flags = anomaly_flags(job);
    if (const std::string link = link_flag(line); !link.empty()) {
      if (!flags.empty()) flags += ",";
      flags += link;
    }
    table.add_row({line.prefix + job.job_id, or_dash(job.job), std::string(to_string(job.state)),
                   std::to_string(job.attempts), format_span(wait_span(job, now)),
                   format_span(run_span(job, now)), flags});
  }
  table.print(out);
  out << '\n' << summary_line(jobs);
  if (hidden > 0) out << fmt::format(" ({} hidden by --depth/--width)", hidden);
  out << '\n';
}

nlohmann::ordered_json line_json(const TreeLine& line, Micros now) {
  nlohmann::ordered_json job = job_json(*line.job, now);
  job["depth"] = line.depth;
  job["parent_link"] = std::string(link_name(line.link));
  job["parent_correlation_id"] = json_text(line.parent_trace);
  job["hidden_below"] = line.hidden_below;
  return job;
}

void print_json(const std::vector<TreeLine>& lines, Micros now, std::ostream& out) {
  for (const TreeLine& line : lines) {
    if (line.job != nullptr) print_json_line(out, line_json(line, now));
  }
}

/// What --follow compares between two looks at the trace.
struct Seen {
  State state;
  std::int32_t attempts;
  Micros last_event_at;
};

/// Prints a line per job that appeared or changed since `seen`, and updates it.
void print_changes(const std::vector<JobRecord>& jobs, std::map<std::string, Seen>& seen, const GlobalOptions& global,
                   Micros now, std::ostream& out) {
  for (const JobRecord& job : jobs) {
    const auto found = seen.find(job.job_id);
    if (found != seen.end() && found->second.last_event_at == job.last_event_at &&
        found->second.state == job.state && found->second.attempts == job.attempts) {
      continue;
    }
    if (global.format == OutputFormat::json) {
      nlohmann::ordered_json line = job_json(job, now);
      line["change"] = found == seen.end() ? "new" : "changed";
      print_json_line(out, line);
    } else {
      const std::string change = found == seen.end()
                                     ? fmt::format("new, {}", to_string(job.state))
                                     : fmt::format("{} → {}", to_string(found->second.state), to_string(job.state));
      Table table({});
      table.add_row({format_timestamp(job.last_event_at), job.job_id, or_dash(job.job), change,
                     fmt::format("attempt {}", job.attempts)});
      table.print(out);
    }
    seen[job.job_id] = {job.state, job.attempts, job.last_event_at};
  }
  out.flush();
}

[[noreturn]] void follow(Store& store, const GlobalOptions& global, const TraceOptions& options,
                         const std::vector<JobRecord>& first, std::ostream& out) {
  std::map<std::string, Seen> seen;
  for (const JobRecord& job : first) seen[job.job_id] = {job.state, job.attempts, job.last_event_at};
  if (global.format == OutputFormat::table) {
    out << fmt::format("following: a line per job that appears or changes (Ctrl-C stops)\n");
  }
  out.flush();
  for (;;) {
    // One look-up of the trace's index a second: cheap however large the store is.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    print_changes(store.jobs_in_trace(options.correlation_id), seen, global, current_time(global), out);
  }
}

}  // namespace

CLI::App* setup_trace(CLI::App& app, TraceOptions& options) {
  CLI::App* trace = app.add_subcommand("trace", "The tree of jobs one request caused, with their timings.");
  trace->add_option("CORRELATION_ID", options.correlation_id, "The request's correlation ID.")->required();
  trace->add_option("--depth", options.depth,
                    "Draw jobs down to this depth (0: the roots only) and count the rest under the\n"
                    "last job drawn.")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000000}))
      ->option_text("N");
  trace->add_option("--width", options.width, "Draw at most this many children of each job; count the rest.")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->option_text("N");
  trace->add_flag("--follow", options.follow,
                  "After the tree, print a line for each job of the request that appears or\n"
                  "changes state, as it lands (checked every second), until Ctrl-C. Waits for\n"
                  "the first job when none is recorded yet.");
  trace->footer(subcommand_footer(
      "Table: jobs under the job that enqueued them (oldest first); WAIT is enqueue to start,\n"
      "RUN start to end of the latest attempt, a trailing + means still waiting or running;\n"
      "then a summary line. A job whose parent is elsewhere is a root, and FLAGS says where\n"
      "the parent is: in another trace (with the command that shows it), recorded without a\n"
      "trace, or not recorded; also a job that is its own parent, and parent cycles\n"
      "(a → b → a: a's parent is b, b's parent is a), drawn once from their oldest job.\n"
      "Deeper than 16 levels the depth is written as [N] instead of indenting further.\n"
      "JSON: one object per job per line, in the same order, with \"depth\" (0 for a root),\n"
      "\"parent_link\" (none, in_trace, other_trace, no_trace, not_recorded, not_looked_up,\n"
      "self, cycle), \"parent_correlation_id\" and \"hidden_below\" (jobs not drawn below it);\n"
      "--follow adds one object per change with \"change\": new or changed.\n"));
  return trace;
}

int run_trace(const GlobalOptions& global, const TraceOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobRecord> jobs = store->jobs_in_trace(options.correlation_id);
  if (jobs.empty()) {
    if (!options.follow) {
      throw CliError(exit_not_found, fmt::format("no jobs with correlation ID '{}'", printable(options.correlation_id)));
    }
    std::cerr << fmt::format("jobtrail: no jobs with correlation ID '{}' yet; waiting for them (Ctrl-C stops)\n",
                             printable(options.correlation_id));
    follow(*store, global, options, jobs, out);
  }
  TreeBuilder builder(jobs, {options.depth, options.width});
  const std::vector<TreeLine> lines = builder.lines(outside_parents(*store, jobs));
  if (global.format == OutputFormat::json) {
    print_json(lines, now, out);
  } else {
    print_table(jobs, lines, builder.hidden(), now, out);
  }
  if (options.follow) follow(*store, global, options, jobs, out);
  return exit_ok;
}

}  // namespace jobtrail::cli
