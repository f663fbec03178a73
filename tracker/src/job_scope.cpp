#include "jobtrail/job_scope.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <typeinfo>
#include <utility>

#include "jobtrail/tracker.h"

namespace jobtrail {

namespace {

// Runs before the context swap in the constructor's init list, so the swap installs the
// resolved correlation ID.
JobInfo with_context(JobInfo info) {
  if (info.job_id.empty()) throw std::invalid_argument("jobtrail: JobScope needs a job_id");
  if (info.correlation_id.empty()) {
    info.correlation_id = current_correlation_id().empty() ? new_correlation_id() : current_correlation_id();
  }
  // A job run inline inside another job on this thread is that job's child.
  if (info.parent_job_id.empty() && current_job_id() != info.job_id) info.parent_job_id = current_job_id();
  return info;
}

// Texts of any length: record() cuts what is over its limit and marks it (truncate_free_text()),
// the one rule for every way in, so a long message never costs the failure its event.
ErrorInfo make_error(std::string_view error_class, std::string_view message, std::string_view backtrace = {}) {
  return ErrorInfo{std::string(error_class), std::string(message), std::string(backtrace)};
}

std::string demangled(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                   &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

// Records `event` with the pending tags. More tags than one event may carry go out first on
// heartbeats, so that no event is rejected for carrying too many.
void record_with_tags(Tracker& tracker, Event event, std::vector<std::string>& pending_tags) {
  while (pending_tags.size() > EventLimits::max_entities) {
    Event carrier = event;
    carrier.state = State::heartbeat;
    carrier.error = {};
    const auto carried = pending_tags.begin() + EventLimits::max_entities;
    carrier.entities.assign(std::make_move_iterator(pending_tags.begin()), std::make_move_iterator(carried));
    pending_tags.erase(pending_tags.begin(), carried);
    tracker.record(std::move(carrier));
  }
  event.entities = std::move(pending_tags);
  pending_tags.clear();
  tracker.record(std::move(event));
}

}  // namespace

JobScope::JobScope(Tracker& tracker, JobInfo info)
    : tracker_(tracker),
      info_(with_context(std::move(info))),
      uncaught_at_start_(std::uncaught_exceptions()),
      context_(info_.correlation_id, info_.job_id) {
  try {
    // The entities ride on `started`; an invalid one would get the whole event rejected.
    for (std::string& entity : info_.entities) tag(std::move(entity));
    info_.entities.clear();
    record_with_tags(tracker_, make_event(State::started), pending_entities_);
  } catch (...) {
    // Out of memory: the job runs untracked rather than not at all.
  }
}

JobScope::~JobScope() {
  if (finished_) return;
  try {
    if (std::uncaught_exceptions() > uncaught_at_start_) {
      // The exception is still on its way up, so its type and what() are out of reach here;
      // run() records them before it gets this far.
      finish(State::failed, make_error("jobtrail.ScopeLeftByException", "job scope was left by an exception"));
    } else {
      finish(State::failed, make_error("jobtrail.NoOutcome",
                                       "job scope ended without succeed(), fail(), give_up() or cancel()"));
    }
  } catch (...) {
    // Destructors never throw; out of memory just loses the failure event.
  }
}

void JobScope::heartbeat() noexcept {
  if (finished_) return;
  try {
    record_with_tags(tracker_, make_event(State::heartbeat), pending_entities_);
  } catch (...) {
    // Out of memory: a missed heartbeat, nothing worse.
  }
}

void JobScope::tag(std::string entity) noexcept {
  // After the outcome no event is left to carry it.
  if (finished_) return;
  try {
    if (!is_valid_entity(entity)) {
      // Recorded alone, the bad tag is rejected and reported through the tracker's error path
      // (counted as invalid) without spoiling the event it would have ridden on.
      Event rejected = make_event(State::heartbeat);
      rejected.entities.push_back(std::move(entity));
      tracker_.record(std::move(rejected));
      return;
    }
    if (std::find(pending_entities_.begin(), pending_entities_.end(), entity) == pending_entities_.end()) {
      pending_entities_.push_back(std::move(entity));
    }
  } catch (...) {
    // Out of memory: the tag is lost, the job goes on.
  }
}

void JobScope::succeed() noexcept { finish(State::succeeded, {}); }

void JobScope::fail(std::string_view error_class, std::string_view message, std::string_view backtrace) noexcept {
  if (finished_) return;
  try {
    finish(State::failed, make_error(error_class, message, backtrace));
  } catch (...) {
    finish(State::failed, {});
  }
}

void JobScope::give_up(std::string_view error_class, std::string_view message) noexcept {
  if (finished_) return;
  try {
    finish(State::dead, make_error(error_class, message));
  } catch (...) {
    finish(State::dead, {});
  }
}

void JobScope::cancel(std::string_view reason) noexcept {
  if (finished_) return;
  try {
    finish(State::cancelled, make_error({}, reason));
  } catch (...) {
    finish(State::cancelled, {});
  }
}

// A second outcome is ignored: the first one is what the job said, and a later call is
// usually a cleanup path (a catch-all that fails what already succeeded).
void JobScope::finish(State state, ErrorInfo error) noexcept {
  if (finished_) return;
  finished_ = true;
  try {
    Event event = make_event(state);
    event.error = std::move(error);
    record_with_tags(tracker_, std::move(event), pending_entities_);
  } catch (...) {
    // Out of memory building the event: instrumentation gives way to the job.
  }
}

void JobScope::fail_with_current_exception() noexcept {
  if (finished_) return;
  try {
    std::string error_class = "unknown";
    std::string message = "unknown exception";
    try {
      if (std::exception_ptr current = std::current_exception()) std::rethrow_exception(current);
    } catch (const std::exception& exception) {
      error_class = demangled(typeid(exception).name());
      message = exception.what();
    } catch (...) {
      // Not a std::exception: nothing more to say about it.
    }
    finish(State::failed, make_error(error_class, message));
  } catch (...) {
    finish(State::failed, {});
  }
}

Event JobScope::make_event(State state) const {
  Event event;
  event.job_id = info_.job_id;
  event.state = state;
  event.job = info_.job;
  event.queue = info_.queue;
  event.correlation_id = info_.correlation_id;
  event.parent_job_id = info_.parent_job_id;
  event.idempotency_key = info_.idempotency_key;
  event.attempt = info_.attempt;
  return event;
}

}  // namespace jobtrail
