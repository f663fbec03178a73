#pragma once
/// \file
/// The check of an event where it enters as a value: which rule it breaks, found without
/// building a string, so record() pays for words only when it drops an event. The rules are
/// event.cpp's alone; check_event() and validation_error() are made of these.

#include <cstdint>
#include <string>

#include "jobtrail/event.h"

namespace jobtrail::detail {

/// The first rule of validation_error() that an event breaks, in its order, and where.
struct EventFault {
  enum class Kind : std::uint8_t {
    none,
    empty_job_id,
    unknown_state,
    negative_time,
    negative_attempt,
    too_long,           ///< `field` (an ID or a name)
    not_text,           ///< `field` (an ID, a name or the worker) is not UTF-8 text
    too_many_entities,
    bad_entity,         ///< entities[`entity`]
    implausible_time,   ///< `at` breaks EventTimeRule (check_entry() alone finds it)
  };
  /// The fields named by too_long and not_text, in the order they are checked.
  enum class Field : std::uint8_t { job_id, correlation_id, parent_job_id, idempotency_key, job, queue, worker };

  Kind kind = Kind::none;
  Field field = Field::job_id;
  std::uint8_t entity = 0;  ///< below EventLimits::max_entities, which is checked first

  explicit operator bool() const noexcept { return kind != Kind::none; }
};

/// The first fault of `event`, or none: what validation_error() words.
EventFault find_fault(const Event& event) noexcept;

/// What check_entry() found.
struct EntryCheck {
  EventFault fault;
  Truncation cut;
};
/// check_event()'s rules, in its order, on `event` in place: EventTimeRule on a nonzero `at`
/// by `now`, free text cut (and its memory given back), find_fault(). record() runs this
/// without moving the event into a CheckedEvent.
EntryCheck check_entry(Event& event, Micros now) noexcept;

/// validation_error()'s words for `fault` of `event` ("" for none); an implausible time is
/// worded by event_time_problem() with `now`.
std::string describe(const Event& event, EventFault fault, Micros now = 0);

}  // namespace jobtrail::detail
