#pragma once
// The derivation of a job's row from its events, shared by every store. Pure functions:
// no I/O, so the rules can be tested on their own.

#include <compare>
#include <cstdint>
#include <optional>
#include <vector>

#include "jobtrail/event.h"
#include "jobtrail/store.h"

namespace jobtrail::detail {

/// Where an event stands in a job's lifecycle. Events are folded in this order whatever
/// order they arrive in: by attempt, then by phase within the attempt (enqueued, started,
/// heartbeats, outcome), then by time, then by state. Ordering by attempt before time keeps
/// the result right when hosts' clocks disagree.
struct LifecycleKey {
  std::int32_t attempt = 0;
  std::uint8_t phase = 0;
  Micros at = 0;
  std::uint8_t state = 0;

  friend auto operator<=>(const LifecycleKey&, const LifecycleKey&) = default;
};

/// An attempt number as stored: "not given" (0) counts as the first attempt.
inline std::int32_t effective_attempt(std::int32_t attempt) noexcept { return attempt > 0 ? attempt : 1; }

LifecycleKey lifecycle_key(State state, std::int32_t attempt, Micros at) noexcept;

/// The lifecycle part of a job's derived row: everything that depends on event order.
struct Lifecycle {
  bool empty = true;
  State state = State::enqueued;
  std::optional<Micros> enqueued_at, started_at, finished_at, heartbeat_at;
  Micros first_event_at = 0;
  Micros last_event_at = 0;
  std::int32_t attempts = 0;
  std::int32_t event_count = 0;
  std::int32_t successes = 0;
  LifecycleKey tail;  ///< the key of the last event in lifecycle order
};

/// The attempt an event belongs to when its sender did not say (attempt 0): the job's current
/// attempt, or the next one for a start after the current attempt ended (and an enqueue after a
/// failure). Events that give their attempt keep it.
std::int32_t resolve_attempt(const Lifecycle& life, State state, std::int32_t attempt, Micros at) noexcept;

/// Whether an event that did not say its attempt (0) may be a resend of one already folded:
/// it is no later than the job's last event. Its attempt would resolve differently now that the
/// job has moved on, so stores look for a stored event of the same state and time, whatever its
/// attempt (a batch sent again after a commit whose outcome was unknown).
inline bool may_be_resend(const Lifecycle& life, std::int32_t attempt, Micros at) noexcept {
  return attempt == 0 && !life.empty && at <= life.last_event_at;
}

/// Folds one event into `life`. The caller guarantees that events come in lifecycle order
/// (key >= life.tail) or refolds from scratch.
void apply(Lifecycle& life, State state, std::int32_t attempt, Micros at) noexcept;

/// A store's step for one new, non-duplicate event of a job: folded at once when it comes in
/// lifecycle order (`in_order`), recording what it changed for metrics in `transitions`; else
/// only counted (so anomaly detection sees it) until the store refolds the job from its events.
void fold_arrival(Lifecycle& life, const Event& event, std::int32_t attempt, bool in_order,
                  std::vector<Transition>& transitions);

/// Puts a job's events as read from a store in lifecycle order; events of one key keep the
/// order the store gave them.
void sort_in_lifecycle_order(std::vector<EventRecord>& events);

}  // namespace jobtrail::detail
