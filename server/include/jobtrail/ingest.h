#pragma once
/// \file
/// The wire format of `jobtrail serve`: events as JSON (one object, an array, or NDJSON)
/// decoded into Events, each checked on its own, once (check_event()): what serve records is not
/// checked again. No HTTP here, so it is testable alone.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "jobtrail/event.h"

namespace jobtrail {

/// How the events of one body were laid out.
enum class BodyShape { object, array, ndjson };

/// One event that could not be taken, and where it was.
struct RejectedEvent {
  std::size_t position = 0;  ///< 0-based index in an array or object body, 1-based line in NDJSON
  std::string reason;        ///< what is wrong, naming the field
};

/// One event taken with free text cut to its limit (truncate_free_text()), and where it was.
struct TruncatedEvent {
  std::size_t position = 0;  ///< as in RejectedEvent
  Truncation fields;
};

/// The result of decoding one body. `body_error` set means the body as a whole is unusable
/// (truncated array, not JSON at all, too many events): then no event may be recorded.
struct DecodedEvents {
  BodyShape shape = BodyShape::object;
  std::vector<CheckedEvent> events;      ///< the valid ones, in body order, for Tracker::record()
  std::vector<std::size_t> positions;    ///< positions[i] is where events[i] was
  std::vector<RejectedEvent> rejected;
  std::vector<TruncatedEvent> truncated;  ///< taken events whose free text was cut
  std::string body_error;
  bool too_many = false;                 ///< body_error is "more than max_events"
};

struct DecodeOptions {
  std::size_t max_events = 10000;  ///< events per body; more is refused as a whole
  /// Treat the body as NDJSON even when it holds a single line (Content-Type: application/x-ndjson).
  bool ndjson = false;
  /// The receiver's clock, for the rule on "at" (event_time.h); 0: the current time.
  Micros now = 0;
};

/// Decodes `body`. An object body is one event; an array body is one event per element;
/// otherwise each non-blank line is one event (NDJSON). Events without "at" keep 0 and are
/// stamped when recorded. Over-long free text (a 1 MB message) is cut to its limit and marked,
/// never a reason to refuse the event; `truncated` says which. Each event is judged alone: a bad one, even one holding a number no
/// double can represent, is that event's rejection and costs no other event. Never throws for
/// bad input (only std::bad_alloc when memory runs out).
DecodedEvents decode_events(std::string_view body, const DecodeOptions& options = {});

/// Decodes one event from a JSON text, or returns the reason it is not one ("" on success).
/// Over-long free text is cut, as in decode_events().
/// `now` as in DecodeOptions.
std::string decode_event(std::string_view json, Event& event, Micros now = 0);

/// The JSON object for `event` in the wire format (fields left empty are omitted).
std::string event_to_json(const Event& event);

}  // namespace jobtrail
