// Records jobs through a Tracker from a process of its own, for the multi-process tests:
//   record_events --db PATH --prefix P --count N [--durable-last] [--then-sleep]
//   record_events --db PATH --prefix P --until-killed [--durable-every K] [--threads T]
// Each job gets enqueued, started and succeeded. With --durable-last the very last event is
// recorded with record_durable() and "DURABLE <job_id>" is printed once it is committed; with
// --then-sleep the program then waits to be killed. Exits 0 only if every event was stored.
// With --until-killed, T threads (default 1) record jobs P-t<thread>-1, P-t<thread>-2, ...
// until the process is killed; the succeeded event of every K-th job (default 1: every job) is
// recorded with record_durable() and "DURABLE <job_id>" printed once committed, the other
// events are queued. A job or event refused on the way is a message on stderr and exit 1.

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "jobtrail/tracker.h"

namespace {

struct Arguments {
  std::string db;
  std::string prefix = "job";
  long count = 0;
  bool durable_last = false;
  bool then_sleep = false;
  bool until_killed = false;
  long durable_every = 1;
  long threads = 1;
};

bool parse_positive(std::string_view value, long& number) {
  const auto parsed = std::from_chars(value.data(), value.data() + value.size(), number);
  return parsed.ec == std::errc() && parsed.ptr == value.data() + value.size() && number >= 1;
}

bool parse_arguments(int argc, char** argv, Arguments& arguments) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--db" && has_value) {
      arguments.db = argv[++i];
    } else if (flag == "--prefix" && has_value) {
      arguments.prefix = argv[++i];
    } else if (flag == "--count" && has_value) {
      if (!parse_positive(argv[++i], arguments.count)) return false;
    } else if (flag == "--durable-every" && has_value) {
      if (!parse_positive(argv[++i], arguments.durable_every)) return false;
    } else if (flag == "--threads" && has_value) {
      if (!parse_positive(argv[++i], arguments.threads)) return false;
    } else if (flag == "--until-killed") {
      arguments.until_killed = true;
    } else if (flag == "--durable-last") {
      arguments.durable_last = true;
    } else if (flag == "--then-sleep") {
      arguments.then_sleep = true;
    } else {
      return false;
    }
  }
  return !arguments.db.empty() && (arguments.count > 0) != arguments.until_killed;
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

// One thread of --until-killed: never returns unless an event is refused.
void record_until_killed(jobtrail::Tracker& tracker, const std::string& prefix, long durable_every,
                         std::mutex& stdout_mutex) {
  for (long i = 1;; ++i) {
    const std::string job_id = prefix + "-" + std::to_string(i);
    const bool durable = i % durable_every == 0;
    jobtrail::RecordStatus statuses[3] = {
        tracker.enqueue(make_event(job_id, jobtrail::State::enqueued)),
        tracker.record(make_event(job_id, jobtrail::State::started)),
        durable ? tracker.record_durable(make_event(job_id, jobtrail::State::succeeded))
                : tracker.record(make_event(job_id, jobtrail::State::succeeded)),
    };
    for (int e = 0; e < 3; ++e) {
      const auto wanted = e == 2 && durable ? jobtrail::RecordStatus::durable : jobtrail::RecordStatus::queued;
      if (statuses[e] != wanted) {
        std::lock_guard lock(stdout_mutex);
        std::fprintf(stderr, "record_events: event %d of %s: %s\n", e + 1, job_id.c_str(),
                     std::string(jobtrail::to_string(statuses[e])).c_str());
        return;
      }
    }
    if (durable) {
      // Printed only once committed: what the test holds the store to after the kill.
      std::lock_guard lock(stdout_mutex);
      std::printf("DURABLE %s\n", job_id.c_str());
      std::fflush(stdout);
    }
  }
}

int run_until_killed(const Arguments& arguments) {
  jobtrail::Tracker tracker(arguments.db);
  std::mutex stdout_mutex;
  std::vector<std::thread> threads;
  for (long t = 0; t < arguments.threads; ++t) {
    threads.emplace_back(record_until_killed, std::ref(tracker), arguments.prefix + "-t" + std::to_string(t),
                         arguments.durable_every, std::ref(stdout_mutex));
  }
  for (auto& thread : threads) thread.join();
  return 1;  // only reached when a thread gave up
}

int run(const Arguments& arguments) {
  if (arguments.until_killed) return run_until_killed(arguments);
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
    std::fprintf(stderr,
                 "usage: record_events --db PATH --prefix P --count N [--durable-last] [--then-sleep]\n"
                 "       record_events --db PATH --prefix P --until-killed [--durable-every K] [--threads T]\n");
    return 2;
  }
  try {
    return run(arguments);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "record_events: %s\n", error.what());
    return 1;
  }
}
