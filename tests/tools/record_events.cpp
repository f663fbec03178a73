// Records jobs through a Tracker from a process of its own, for the multi-process tests:
//   record_events --db PATH --prefix P --count N [--durable-last] [--then-sleep]
// Each job gets enqueued, started and succeeded. With --durable-last the very last event is
// recorded with record_durable() and "DURABLE <job_id>" is printed once it is committed; with
// --then-sleep the program then waits to be killed. Exits 0 only if every event was stored.

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "jobtrail/tracker.h"

namespace {

struct Arguments {
  std::string db;
  std::string prefix = "job";
  long count = 0;
  bool durable_last = false;
  bool then_sleep = false;
};

bool parse_arguments(int argc, char** argv, Arguments& arguments) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--db" && has_value) {
      arguments.db = argv[++i];
    } else if (flag == "--prefix" && has_value) {
      arguments.prefix = argv[++i];
    } else if (flag == "--count" && has_value) {
      const std::string_view value = argv[++i];
      const auto parsed = std::from_chars(value.data(), value.data() + value.size(), arguments.count);
      if (parsed.ec != std::errc() || parsed.ptr != value.data() + value.size() || arguments.count < 1) return false;
    } else if (flag == "--durable-last") {
      arguments.durable_last = true;
    } else if (flag == "--then-sleep") {
      arguments.then_sleep = true;
    } else {
      return false;
    }
  }
  return !arguments.db.empty() && arguments.count > 0;
}

jobtrail::Event make_event(const std::string& job_id, jobtrail::State state) {
  jobtrail::Event event;
  event.job_id = job_id;
  event.state = state;
  event.job = "RecordEventsJob";
  event.queue = "default";
  event.correlation_id = "record-events";
  event.attempt = 1;
  return event;
}

int run(const Arguments& arguments) {
  jobtrail::Tracker tracker(arguments.db);
  const auto expected = static_cast<std::uint64_t>(arguments.count) * 3;
  for (long i = 1; i <= arguments.count; ++i) {
    const std::string job_id = arguments.prefix + "-" + std::to_string(i);
    tracker.enqueue(make_event(job_id, jobtrail::State::enqueued));
    tracker.record(make_event(job_id, jobtrail::State::started));
    jobtrail::Event succeeded = make_event(job_id, jobtrail::State::succeeded);
    if (i < arguments.count || !arguments.durable_last) {
      tracker.record(std::move(succeeded));
      continue;
    }
    const jobtrail::RecordStatus status = tracker.record_durable(std::move(succeeded));
    if (status != jobtrail::RecordStatus::durable) {
      std::fprintf(stderr, "record_events: last event not durable: %s\n",
                   std::string(jobtrail::to_string(status)).c_str());
      return 1;
    }
    std::printf("DURABLE %s\n", job_id.c_str());
    std::fflush(stdout);
    if (arguments.then_sleep) {
      for (;;) pause();  // until the test kills us
    }
  }
  tracker.shutdown(std::chrono::seconds(60));
  const jobtrail::TrackerCounters counters = tracker.counters();
  if (counters.stored + counters.duplicates != expected) {
    std::fprintf(stderr,
                 "record_events: stored %llu of %llu events (queue full %llu, store error %llu, invalid %llu)\n",
                 static_cast<unsigned long long>(counters.stored), static_cast<unsigned long long>(expected),
                 static_cast<unsigned long long>(counters.dropped_queue_full),
                 static_cast<unsigned long long>(counters.dropped_store_error),
                 static_cast<unsigned long long>(counters.dropped_invalid));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments arguments;
  if (!parse_arguments(argc, argv, arguments)) {
    std::fprintf(stderr, "usage: record_events --db PATH --prefix P --count N [--durable-last] [--then-sleep]\n");
    return 2;
  }
  try {
    return run(arguments);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "record_events: %s\n", error.what());
    return 1;
  }
}
