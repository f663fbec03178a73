#include "derive.h"

#include <algorithm>

namespace jobtrail::detail {

namespace {
std::uint8_t phase_of(State state) noexcept {
  switch (state) {
    case State::enqueued: return 0;
    case State::started: return 1;
    case State::heartbeat: return 2;
    // A failed attempt may be followed, in the same attempt, by the job giving up (dead):
    // final outcomes come after `failed` whatever the clocks say.
    case State::failed: return 3;
    default: return 4;
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
  const LifecycleKey previous = life.tail;
  life.first_event_at = std::min(life.first_event_at, at);
  life.last_event_at = std::max(life.last_event_at, at);
  life.attempts = std::max(life.attempts, effective_attempt(attempt));
  life.event_count += 1;
  life.tail = lifecycle_key(state, attempt, at);

  switch (state) {
    case State::enqueued:
      // The enqueue of the latest attempt: a retry waits in the queue again.
      life.enqueued_at = at;
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
      // A heartbeat proves the job runs, even if its `started` event never arrived: after an
      // enqueue, or from an attempt later than one that already ended.
      if (life.state == State::enqueued) {
        life.state = State::started;
      } else if (life.tail.attempt > previous.attempt && ends_attempt(static_cast<State>(previous.state))) {
        life.state = State::started;
        life.started_at.reset();  // unknown: this attempt's start was never recorded
        life.finished_at.reset();
      }
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

void fold_arrival(Lifecycle& life, const Event& event, std::int32_t attempt, bool in_order,
                  std::vector<Transition>& transitions) {
  const Micros at = event.at;
  if (!in_order) {
    life.event_count += 1;
    if (event.state == State::succeeded) life.successes += 1;
    return;
  }
  Transition transition;
  if (event.state == State::started && life.enqueued_at) transition.wait = at - *life.enqueued_at;
  if (ends_attempt(event.state) && life.started_at && life.tail.attempt == attempt) {
    transition.run = at - *life.started_at;
  }
  apply(life, event.state, attempt, at);
  if (event.state != State::heartbeat && event.state != State::enqueued) {
    transition.job = event.job;
    transition.queue = event.queue;
    transition.state = event.state;
    transitions.push_back(std::move(transition));
  }
}

std::int32_t resolve_attempt(const Lifecycle& life, State state, std::int32_t attempt, Micros at) noexcept {
  if (attempt > 0) return attempt;
  if (life.empty) return 1;
  const std::int32_t current = std::max<std::int32_t>(1, life.tail.attempt);
  const auto last_state = static_cast<State>(life.tail.state);
  // A start after the current attempt ended is the next attempt (a retry, or a re-run); so is
  // an enqueue after a failure. Earlier ones are late arrivals from the current attempt.
  const bool after_an_end = ends_attempt(last_state) && at > life.tail.at;
  if (after_an_end && (state == State::started || (state == State::enqueued && last_state == State::failed))) {
    return current + 1;
  }
  return current;
}

void sort_in_lifecycle_order(std::vector<EventRecord>& events) {
  std::vector<std::pair<LifecycleKey, EventRecord>> keyed;
  keyed.reserve(events.size());
  for (auto& event : events) keyed.emplace_back(lifecycle_key(event.state, event.attempt, event.at), std::move(event));
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  events.clear();
  for (auto& [key, event] : keyed) events.push_back(std::move(event));
}

}  // namespace jobtrail::detail
