#include "derive.h"

#include <algorithm>

namespace jobtrail::detail {

namespace {
std::uint8_t phase_of(State state) noexcept {
  switch (state) {
    case State::enqueued: return 0;
    case State::started: return 1;
    case State::heartbeat: return 2;
    default: return 3;
  }
}
}  // namespace

LifecycleKey lifecycle_key(State state, std::int32_t attempt, Micros at) noexcept {
  return {effective_attempt(attempt), phase_of(state), at, static_cast<std::uint8_t>(state)};
}

void apply(Lifecycle& life, State state, std::int32_t attempt, Micros at) noexcept {
  if (life.empty) {
    life.first_event_at = life.last_event_at = at;
    life.empty = false;
    // A job first seen through a heartbeat is running.
    life.state = state == State::heartbeat ? State::started : state;
  }
  life.first_event_at = std::min(life.first_event_at, at);
  life.last_event_at = std::max(life.last_event_at, at);
  life.attempts = std::max(life.attempts, effective_attempt(attempt));
  life.event_count += 1;
  life.tail = lifecycle_key(state, attempt, at);

  switch (state) {
    case State::enqueued:
      life.enqueued_at = life.enqueued_at ? std::min(*life.enqueued_at, at) : at;
      life.state = State::enqueued;
      break;
    case State::started:
      // A new attempt: what is known of the previous one's end no longer describes the job.
      life.started_at = at;
      life.finished_at.reset();
      life.state = State::started;
      break;
    case State::heartbeat:
      life.heartbeat_at = life.heartbeat_at ? std::max(*life.heartbeat_at, at) : at;
      // A heartbeat proves the job runs, even if its `started` event never arrived.
      if (life.state == State::enqueued) life.state = State::started;
      break;
    case State::succeeded:
    case State::failed:
    case State::dead:
    case State::cancelled:
      life.finished_at = at;
      life.state = state;
      if (state == State::succeeded) life.successes += 1;
      break;
  }
}

}  // namespace jobtrail::detail
