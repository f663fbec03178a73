// `jobtrail ls`: jobs matching a filter, newest first, a page at a time; or followed as they land.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/list_filter.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

/// --limit's bound: a listing a terminal or a pipe can still take.
constexpr std::size_t longest_listing = 1000000;

JobFilter filter_from(const LsOptions& options, Micros now) {
  JobFilter filter;
  const std::pair<std::string_view, const std::string&> terms[] = {
      {"state", options.state},   {"job", options.job},     {"queue", options.queue},  {"entity", options.entity},
      {"since", options.since},   {"until", options.until}, {"cursor", options.cursor}};
  for (const auto& [name, value] : terms) {
    if (value.empty()) continue;
    const std::string option = fmt::format("--{}", name);
    if (std::string problem = set_filter_term(filter, name, value, now, option, longest_listing); !problem.empty()) {
      throw CliError(exit_bad_input, problem);
    }
  }
  filter.anomalies_only = options.anomalies_only;
  filter.limit = options.limit;
  return filter;
}

/// The table of ls, its columns depending on --output; the same columns print as CSV.
class JobTable {
 public:
  explicit JobTable(bool wide) : wide_(wide) {}

  Table make() const {
    // CSV fields are job_json's names; wait_ongoing and run_ongoing are the table's "+".
    std::vector<Column> columns{{"FIRST SEEN", "first_event_at"},
                                {"JOB", "job_id"},
                                {"CLASS", "job"},
                                {"QUEUE", "queue"},
                                {"STATE", "state"},
                                {"LAST SEEN", "last_event_at", Align::right},
                                {"ATTEMPTS", "attempts", Align::right},
                                {"WAIT", "wait_us", Align::right},
                                {"", "wait_ongoing"},
                                {"RUN", "run_us", Align::right},
                                {"", "run_ongoing"},
                                {"FLAGS", "anomalies"}};
    if (wide_) {
      columns.insert(columns.end(), {{"WORKER", "worker"},
                                     {"CORRELATION ID", "correlation_id"},
                                     {"ERROR"},  // its first line; CSV has the whole of it:
                                     {"", "error_class"},
                                     {"", "error_message"}});
    }
    return Table(std::move(columns));
  }

  void add(Table& table, const JobRecord& job, Micros now) const {
    const Span wait = wait_span(job, now), run = run_span(job, now);
    std::vector<Cell> cells{time_cell(job.first_event_at), job.job_id, text_cell(job.job), text_cell(job.queue),
                            state_cell(job.state), relative_time_cell(job.last_event_at, now),
                            count_cell(job.attempts), span_cell(wait), flag_cell(wait.ongoing), span_cell(run),
                            flag_cell(run.ongoing), flags_cell(job)};
    if (wide_) {
      cells.insert(cells.end(), {text_cell(job.worker), text_cell(job.correlation_id),
                                 or_dash(error_summary(job.last_error)), Cell("", job.last_error.error_class),
                                 Cell("", job.last_error.message)});
    }
    table.add_row(std::move(cells));
  }

 private:
  bool wide_;
};

// Set by SIGINT while following: the loop ends at its next check and the command exits 0.
volatile std::sig_atomic_t follow_interrupted = 0;
extern "C" void stop_following(int) { follow_interrupted = 1; }

/// Flushes `out`; false when the reader went away (a closed pipe), which ends a follow
/// quietly. Any other write error is an error.
bool flushed(std::ostream& out) {
  errno = 0;
  out.flush();
  if (out) return true;
  if (errno == EPIPE) return false;
  throw CliError(exit_store_unavailable, fmt::format("cannot write the output: {}", errno ? std::strerror(errno) : "write failed"));
}

/// What a printed job showed: a write that leaves these as they were is not printed again.
struct Seen {
  State state = State::enqueued;
  std::int32_t events = 0;
  std::uint32_t anomalies = 0;
  bool operator==(const Seen&) const = default;
  static Seen of(const JobRecord& job) { return {job.state, job.event_count, job.anomalies}; }
};

// Jobs read per store call while catching up.
constexpr std::size_t follow_batch = 1000;

int follow(const GlobalOptions& global, const LsOptions& options, JobFilter filter, Store& store, std::ostream& out) {
  const Micros interval = parse_duration_argument("--interval", options.interval);
  if (interval < 100'000 || interval > 3'600'000'000) {
    throw CliError(exit_bad_input, fmt::format("bad --interval '{}': expected 100ms to 1h", options.interval));
  }
  struct sigaction on_interrupt {};
  on_interrupt.sa_handler = stop_following;
  sigemptyset(&on_interrupt.sa_mask);
  sigaction(SIGINT, &on_interrupt, nullptr);
  // A reader that goes away (`| head`) is seen as EPIPE on the next write instead.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, nullptr);

  const JobTable columns(options.output == "wide");
  bool header_printed = false;
  const auto print = [&](const std::vector<const JobRecord*>& jobs) {
    // CSV names its columns at once, so a reader knows them before the first job lands.
    if (jobs.empty() && (global.format != OutputFormat::csv || header_printed)) return true;
    const Micros now = current_time(global);
    if (global.format == OutputFormat::json) {
      for (const JobRecord* job : jobs) print_json_line(out, job_json(*job, now));
    } else {
      // Each batch is a table of its own (columns fit the batch); only the first has a header.
      Table table = columns.make();
      for (const JobRecord* job : jobs) columns.add(table, *job, now);
      write_table(global, table, out, !header_printed);
      header_printed = true;
    }
    return flushed(out);
  };
  // The position before the first page: a job written in between is read again, and printed
  // again only if it changed since the page showed it.
  ChangePosition mark = store.last_change();
  std::map<std::int64_t, Seen> on_first_page;
  {
    std::vector<JobRecord> recent = store.list_jobs(filter);
    std::vector<const JobRecord*> oldest_first;
    for (auto job = recent.rbegin(); job != recent.rend(); ++job) {
      oldest_first.push_back(&*job);
      on_first_page[job->row] = Seen::of(*job);
    }
    if (!print(oldest_first)) return exit_ok;
  }
  // Every write since the mark, in the order written, new jobs and changed ones alike: one
  // range of the store's index of writes per poll, whatever the job was when following began.
  JobFilter changes = filter;
  changes.limit = follow_batch;
  while (follow_interrupted == 0) {
    for (Micros slept = 0; slept < interval && follow_interrupted == 0; slept += 100'000) {
      std::this_thread::sleep_for(std::chrono::microseconds(std::min<Micros>(100'000, interval - slept)));
    }
    if (follow_interrupted != 0) break;
    for (;;) {
      ChangedJobs written = store.changed_jobs(changes, mark);
      mark = written.next;
      std::vector<const JobRecord*> batch;
      for (const JobRecord& job : written.jobs) {
        if (const auto shown = on_first_page.find(job.row); shown != on_first_page.end()) {
          const bool same = shown->second == Seen::of(job);
          on_first_page.erase(shown);
          if (same) continue;
        }
        batch.push_back(&job);
      }
      if (!print(batch)) return exit_ok;
      if (written.jobs.size() < follow_batch) break;
    }
  }
  return exit_ok;
}

}  // namespace

CLI::App* setup_ls(CLI::App& app, LsOptions& options) {
  CLI::App* ls = app.add_subcommand("ls", "Jobs matching a filter, newest first, a page at a time.");
  add_job_states_option(*ls, options.state);
  ls->add_option("--job", options.job, "Only jobs of this class, e.g. WelcomeEmailJob.")->option_text("CLASS");
  ls->add_option("--queue", options.queue, "Only jobs on this queue.")->option_text("QUEUE");
  ls->add_option("--entity", options.entity, "Only jobs tagged with this business object, e.g. user:42.")
      ->option_text("TYPE:ID");
  ls->add_option("--since", options.since, fmt::format("Only jobs first seen at or after this time:\n{}.", time_syntax_help))
      ->option_text("TIME");
  ls->add_option("--until", options.until, "Only jobs first seen before this time (same syntax).")
      ->option_text("TIME");
  ls->add_flag("--anomalies", options.anomalies_only,
               "Only jobs flagged with an impossible sequence (duplicate success, duplicate\n"
               "idempotency key).");
  ls->add_option("--limit", options.limit, "At most this many jobs per page (default 50).")
      ->check(CLI::Range(std::size_t{1}, longest_listing))
      ->option_text("N");
  ls->add_option("--cursor", options.cursor,
                 "Start after the last job of a previous page: the cursor its \"more:\" note\n"
                 "printed. Jobs recorded meanwhile do not shift the pages.")
      ->option_text("CURSOR");
  ls->add_option("--output", options.output, "normal, or wide: also WORKER, CORRELATION ID and the last ERROR.")
      ->check(CLI::IsMember({"normal", "wide"}))
      ->option_text("normal|wide");
  ls->add_flag("--follow,-f", options.follow,
               "Print the newest matching jobs oldest first, then each job as it is recorded\n"
               "or changes (any job, however old), until Ctrl-C (exit 0) or the reader goes\n"
               "away.");
  ls->add_option("--interval", options.interval,
                 "How often --follow looks for new and changed jobs (default 1s, 100ms\n"
                 "to 1h).")
      ->option_text("DURATION");
  ls->footer(subcommand_footer(
      "Table: FIRST SEEN is the job's first event, LAST SEEN how long ago its latest one\n"
      "was (as of --now); WAIT is enqueue to start, RUN start to end of the latest\n"
      "attempt, a trailing + means still waiting or running. No match prints nothing on\n"
      "stdout (a CSV header only with --format csv; a note on stderr) and exits 0.\n"
      "CSV: the table's columns by their JSON names, first_event_at and last_event_at\n"
      "as RFC 3339 UTC, wait_us and run_us in microseconds with wait_ongoing and\n"
      "run_ongoing (the table's +); --output wide adds worker, correlation_id,\n"
      "error_class and error_message (whole, newlines kept inside the quoted field).\n"
      "Pages: when more jobs match than --limit, a note on stderr says how many (counted\n"
      "up to 10,000 beyond the page, else \"more than\") and gives the --cursor of the\n"
      "next page. JSON: one object per job per line; for a partial page, one object on\n"
      "stderr: {\"next\": cursor, \"shown\", \"total\", \"total_exact\"}, as GET /v1/jobs answers.\n"
      "--follow prints a job each time it is recorded or changes (a new event other than\n"
      "a heartbeat, or a new flag) and then matches every filter: a job already running\n"
      "when it started that fails later shows under --state failed. Tables and CSV\n"
      "print one header for the whole stream (CSV's at once).\n"));
  return ls;
}

int run_ls(const GlobalOptions& global, const LsOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const JobFilter filter = filter_from(options, now);
  if (options.follow && !options.cursor.empty()) {
    throw CliError(exit_bad_input, "--follow starts at the newest jobs; it takes no --cursor");
  }
  const auto store = open_store_for(global, StoreAccess::read_only);
  if (options.follow) return follow(global, options, filter, *store, out);
  const JobPage page = list_page(*store, filter);
  const bool from_cursor = filter.after.has_value();

  if (global.format == OutputFormat::json) {
    for (const JobRecord& job : page.jobs) print_json_line(out, job_json(job, now));
    if (page.partial()) print_json_line(std::cerr, page_json(page));
    return exit_ok;
  }
  const JobTable columns(options.output == "wide");
  if (page.jobs.empty()) {
    // Not an error, but a blank screen would leave a person wondering whether it worked.
    // CSV still names its columns: an export with no rows is a file with a header.
    if (global.format == OutputFormat::csv) write_table(global, columns.make(), out);
    out.flush();
    std::cerr << (from_cursor ? "jobtrail: no more jobs after this cursor\n" : "jobtrail: no jobs match\n");
    return exit_ok;
  }
  Table table = columns.make();
  for (const JobRecord& job : page.jobs) columns.add(table, job, now);
  write_table(global, table, out);
  if (page.partial()) {
    out.flush();
    std::cerr << "jobtrail: " << page_note(page, from_cursor) << '\n';
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
