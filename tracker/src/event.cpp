#include "jobtrail/event.h"

#include <array>
#include <charconv>
#include <chrono>
#include <limits>
#include <cstdint>
#include <cstring>

#include "event_fault.h"

namespace jobtrail {

namespace {
constexpr std::array<std::string_view, 8> state_names = {
    "", "enqueued", "started", "heartbeat", "succeeded", "failed", "dead", "cancelled"};

bool is_entity_type_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

std::string too_long(std::string_view field, std::size_t length, std::size_t limit) {
  return std::string(field) + " is " + std::to_string(length) + " bytes long; the limit is " +
         std::to_string(limit);
}
}  // namespace

Micros now_micros() noexcept {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string_view to_string(State state) noexcept {
  auto index = static_cast<std::size_t>(state);
  return index < state_names.size() ? state_names[index] : std::string_view("unknown");
}

std::optional<State> parse_state(std::string_view name) noexcept {
  for (std::size_t i = 1; i < state_names.size(); ++i) {
    if (state_names[i] == name) return static_cast<State>(i);
  }
  return std::nullopt;
}

bool is_final(State state) noexcept {
  return state == State::succeeded || state == State::dead || state == State::cancelled;
}

bool ends_attempt(State state) noexcept { return is_final(state) || state == State::failed; }

const std::vector<State>& all_states() {
  static const std::vector<State> states = {State::enqueued, State::started,   State::heartbeat,
                                            State::succeeded, State::failed,   State::dead,
                                            State::cancelled};
  return states;
}

bool is_valid_entity(std::string_view entity) noexcept {
  auto colon = entity.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == entity.size()) return false;
  if (entity.size() > EventLimits::max_entity_length) return false;
  for (std::size_t i = 0; i < colon; ++i) {
    if (!is_entity_type_char(entity[i])) return false;
  }
  return true;
}

namespace {
// The length of the valid UTF-8 sequence (not NUL) at the start of `text`, or 0.
std::size_t utf8_sequence(std::string_view text) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead == 0) return 0;
  if (lead < 0x80) return 1;
  std::size_t length;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}
}  // namespace

namespace {
constexpr std::uint64_t ones8 = 0x0101010101010101ULL, high_bits8 = 0x8080808080808080ULL;
constexpr std::uint32_t ones4 = 0x01010101U, high_bits4 = 0x80808080U;

/// Nonzero when a byte of `word` is 0 or at least 0x80. The zero test is the classic one: only
/// a zero byte borrows its high bit into the result (a later byte may borrow as well, but only
/// after a zero, so the result is nonzero exactly when some byte is zero).
template <typename Word>
constexpr Word plain_ascii_fault(Word word, Word ones, Word high_bits) noexcept {
  return (word | ((word - ones) & ~word)) & high_bits;
}

template <typename Word>
Word load(const char* at) noexcept {
  Word word;
  std::memcpy(&word, at, sizeof word);
  return word;
}

/// Whether every byte of `text` is 1 to 0x7F: nearly every ID, name and entity. Whole words,
/// the last one overlapping the one before, so no byte is looked at on its own and the only
/// branches are on the length (record() checks eight texts per event).
bool is_plain_ascii(std::string_view text) noexcept {
  const char* const data = text.data();
  const std::size_t size = text.size();
  if (size >= 8) {
    std::uint64_t fault = 0;
    for (std::size_t i = 0; i + 8 < size; i += 8) fault |= plain_ascii_fault(load<std::uint64_t>(data + i), ones8, high_bits8);
    return (fault | plain_ascii_fault(load<std::uint64_t>(data + size - 8), ones8, high_bits8)) == 0;
  }
  if (size >= 4) {
    return (plain_ascii_fault(load<std::uint32_t>(data), ones4, high_bits4) |
            plain_ascii_fault(load<std::uint32_t>(data + size - 4), ones4, high_bits4)) == 0;
  }
  if (size == 0) return true;
  // 1 to 3 bytes: the first, middle and last cover them all.
  const auto plain = [](char c) { return static_cast<unsigned char>(static_cast<unsigned char>(c) - 1) < 0x7F; };
  return plain(data[0]) && plain(data[size / 2]) && plain(data[size - 1]);
}

/// is_utf8_text() for text that is not plain ASCII: decoded sequence by sequence, with runs of
/// plain ASCII between them skipped eight bytes at a time.
bool is_utf8_text_decoded(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    while (i + 8 <= text.size() && plain_ascii_fault(load<std::uint64_t>(text.data() + i), ones8, high_bits8) == 0) {
      i += 8;
    }
    if (i == text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c != 0 && c < 0x80) {
      ++i;
      continue;
    }
    const auto length = utf8_sequence(text.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}
}  // namespace

bool is_utf8_text(std::string_view text) noexcept {
  // record() validates every ID on the caller's thread, and nearly all are plain ASCII without
  // NUL: that is answered from whole words before anything is decoded.
  return is_plain_ascii(text) || is_utf8_text_decoded(text);
}

std::string to_utf8_text(std::string_view text) {
  if (is_utf8_text(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  while (!text.empty()) {
    const auto length = utf8_sequence(text);
    if (length == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, length));
      text.remove_prefix(length);
    }
  }
  return out;
}

namespace {
/// Cuts `text` to `limit` bytes with the marker, in place; false when it already fits.
bool cut_to(std::string& text, std::size_t limit) noexcept {
  if (text.size() <= limit) return false;
  char sent[24];
  const auto printed = std::to_chars(sent, sent + sizeof sent, text.size());
  const std::string_view length(sent, static_cast<std::size_t>(printed.ptr - sent));
  constexpr std::string_view unit = " bytes]";
  const std::size_t tail = truncation_marker.size() + length.size() + unit.size();
  // Every limit is far above the marker; the guard keeps a future tiny limit from underflowing.
  std::size_t end = limit > tail ? limit - tail : 0;
  // Back to the start of a UTF-8 sequence (at most three bytes: text that is not UTF-8 at all
  // is repaired by the stores), so the cut never splits a character.
  for (int back = 0; back < 3 && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80; ++back) --end;
  // Shrinking and appending within the capacity the text already has: no allocation.
  text.resize(end);
  text.append(truncation_marker).append(length).append(unit);
  return true;
}
}  // namespace

std::vector<std::string_view> Truncation::fields() const {
  std::vector<std::string_view> names;
  if (worker) names.push_back("worker");
  if (error_class) names.push_back("error.class");
  if (message) names.push_back("error.message");
  if (backtrace) names.push_back("error.backtrace");
  return names;
}

namespace {
/// The free-text fields and their limits, in the order of Truncation's members.
template <typename EventRef>
auto free_texts(EventRef& event) noexcept {
  using L = EventLimits;
  return std::array{std::pair{&event.worker, L::max_name_length},
                    std::pair{&event.error.error_class, L::max_name_length},
                    std::pair{&event.error.message, L::max_message_length},
                    std::pair{&event.error.backtrace, L::max_backtrace_length}};
}
}  // namespace

bool has_over_long_text(const Event& event) noexcept {
  for (const auto& [text, limit] : free_texts(event)) {
    if (text->size() > limit) return true;
  }
  return false;
}

Truncation truncate_free_text(Event& event) noexcept {
  Truncation cut;
  // What record() sees nearly always: four comparisons, and no call for each text.
  if (!has_over_long_text(event)) return cut;
  const auto texts = free_texts(event);
  cut.worker = cut_to(*texts[0].first, texts[0].second);
  cut.error_class = cut_to(*texts[1].first, texts[1].second);
  cut.message = cut_to(*texts[2].first, texts[2].second);
  cut.backtrace = cut_to(*texts[3].first, texts[3].second);
  return cut;
}

bool is_plausible_event_time(Micros at, Micros now) noexcept {
  return at >= EventTimeRule::earliest && (now > std::numeric_limits<Micros>::max() - EventTimeRule::max_ahead ||
                                           at <= now + EventTimeRule::max_ahead);
}

std::optional<TimeUnitGuess> guess_time_unit(Micros number, Micros now) noexcept {
  if (is_plausible_event_time(number, now)) return std::nullopt;
  constexpr Micros max = std::numeric_limits<Micros>::max();
  const struct {
    std::string_view unit;
    Micros multiply;
    Micros divide;
  } readings[] = {{"seconds", 1'000'000, 1}, {"milliseconds", 1'000, 1}, {"nanoseconds", 1, 1'000}};
  for (const auto& reading : readings) {
    if (number > max / reading.multiply || number < -(max / reading.multiply)) continue;
    const Micros as_micros = number * reading.multiply / reading.divide;
    if (is_plausible_event_time(as_micros, now)) return TimeUnitGuess{reading.unit, as_micros};
  }
  return std::nullopt;
}

std::string event_time_problem(Micros at, Micros now) {
  if (is_plausible_event_time(at, now)) return {};
  std::string problem = "at " + std::to_string(at) +
                        (at < EventTimeRule::earliest ? " is before 2000-01-01" : " is more than a day ahead of the clock");
  if (const auto guess = guess_time_unit(at, now)) {
    return problem + ": it reads as " + std::string(guess->unit) + " since the epoch; send microseconds";
  }
  return problem + ": a clock that is wrong, or the wrong unit (send microseconds)";
}

namespace detail {

EventFault find_fault(const Event& event) noexcept {
  using L = EventLimits;
  using Kind = EventFault::Kind;
  using Field = EventFault::Field;
  const auto fault = [](Kind kind, Field field = Field::job_id, std::size_t entity = 0) {
    return EventFault{kind, field, static_cast<std::uint8_t>(entity)};
  };
  if (event.job_id.empty()) return fault(Kind::empty_job_id);
  // 1 to 7, what to_string() names; 0 and anything above are no state.
  if (static_cast<std::size_t>(event.state) - 1 >= state_names.size() - 1) return fault(Kind::unknown_state);
  if (event.at < 0) return fault(Kind::negative_time);
  if (event.attempt < 0) return fault(Kind::negative_attempt);
  // Each text's length, then its bytes, in the order the messages have always come in.
  const auto check = [&](Field field, const std::string& text, std::size_t limit) {
    if (text.size() > limit) return fault(Kind::too_long, field);
    if (!is_utf8_text(text)) return fault(Kind::not_text, field);
    return EventFault{};
  };
  if (const auto found = check(Field::job_id, event.job_id, L::max_id_length)) return found;
  if (const auto found = check(Field::correlation_id, event.correlation_id, L::max_id_length)) return found;
  if (const auto found = check(Field::parent_job_id, event.parent_job_id, L::max_id_length)) return found;
  if (const auto found = check(Field::idempotency_key, event.idempotency_key, L::max_id_length)) return found;
  // Keys: a job class or queue is what filters and stats group by, so a longer one is refused
  // rather than cut into a name nobody asked for.
  if (const auto found = check(Field::job, event.job, L::max_name_length)) return found;
  if (const auto found = check(Field::queue, event.queue, L::max_name_length)) return found;
  // Free text is never a reason to refuse: too long, it is cut (truncate_free_text()); the
  // error's texts may hold any bytes, which stores that need UTF-8 repair. The worker is shown
  // and grouped as a name, so it must be UTF-8 text.
  if (!is_utf8_text(event.worker)) return fault(Kind::not_text, Field::worker);
  if (event.entities.size() > L::max_entities) return fault(Kind::too_many_entities);
  for (std::size_t i = 0; i < event.entities.size(); ++i) {
    if (!is_valid_entity(event.entities[i]) || !is_utf8_text(event.entities[i])) return fault(Kind::bad_entity, Field::job_id, i);
  }
  return {};
}

EntryCheck check_entry(Event& event, Micros now) noexcept {
  EntryCheck result;
  // Time first: a client sending seconds hears about that before anything else it got wrong.
  if (event.at != 0 && !is_plausible_event_time(event.at, now)) {
    result.fault.kind = EventFault::Kind::implausible_time;
    return result;
  }
  // A long message costs the event nothing: it is cut here, once, so a queue never holds more
  // than the limits (four size comparisons when nothing is long).
  result.cut = truncate_free_text(event);
  if (result.cut.any()) {
    try {
      event.error.message.shrink_to_fit();
      event.error.backtrace.shrink_to_fit();
    } catch (...) {
      // Out of memory: the cut text keeps its old capacity, which is no harm.
    }
  }
  result.fault = find_fault(event);
  return result;
}

std::string describe(const Event& event, EventFault fault, Micros now) {
  using L = EventLimits;
  using Kind = EventFault::Kind;
  using Field = EventFault::Field;
  const auto field = [&]() -> std::pair<std::string_view, const std::string*> {
    switch (fault.field) {
      case Field::job_id: return {"job_id", &event.job_id};
      case Field::correlation_id: return {"correlation_id", &event.correlation_id};
      case Field::parent_job_id: return {"parent_job_id", &event.parent_job_id};
      case Field::idempotency_key: return {"idempotency_key", &event.idempotency_key};
      case Field::job: return {"job", &event.job};
      case Field::queue: return {"queue", &event.queue};
      case Field::worker: return {"worker", &event.worker};
    }
    return {"job_id", &event.job_id};
  };
  switch (fault.kind) {
    case Kind::none: return {};
    case Kind::empty_job_id: return "job_id is empty";
    case Kind::unknown_state: return "state " + std::to_string(static_cast<int>(event.state)) + " is not a known state";
    case Kind::negative_time: return "timestamp is negative";
    case Kind::negative_attempt: return "attempt is negative";
    case Kind::too_long: {
      const auto [name, text] = field();
      const bool is_id = fault.field <= Field::idempotency_key;
      return too_long(name, text->size(), is_id ? L::max_id_length : L::max_name_length);
    }
    case Kind::not_text: return std::string(field().first) + " is not UTF-8 text (or holds a NUL byte)";
    case Kind::too_many_entities:
      return "event has " + std::to_string(event.entities.size()) + " entities; the limit is " +
             std::to_string(L::max_entities);
    case Kind::bad_entity:
      return "entity \"" + event.entities[fault.entity].substr(0, 60) +
             "\" is not of the form type:id (type of a-z, 0-9, _ . -)";
    case Kind::implausible_time: return event_time_problem(event.at, now);
  }
  return {};
}

}  // namespace detail

std::string validation_error(const Event& event) { return detail::describe(event, detail::find_fault(event)); }

EventCheck check_event(Event& event, Micros now) {
  const detail::EntryCheck entry = detail::check_entry(event, now);
  EventCheck result;
  result.cut = entry.cut;
  if (entry.fault) {
    result.implausible_time = entry.fault.kind == detail::EventFault::Kind::implausible_time;
    result.problem = detail::describe(event, entry.fault, now);
  } else {
    result.checked.emplace(CheckedEvent::Key(), std::move(event));
  }
  return result;
}

}  // namespace jobtrail
