#include <catch2/catch.hpp>

#include "jobtrail/event.h"

using namespace jobtrail;

TEST_CASE("states have names and back", "[tracker][event]") {
  for (auto state : all_states()) {
    auto parsed = parse_state(to_string(state));
    REQUIRE(parsed);
    CHECK(*parsed == state);
  }
  CHECK_FALSE(parse_state("running"));
  CHECK_FALSE(parse_state(""));
  CHECK_FALSE(parse_state("Succeeded"));
}

TEST_CASE("final and attempt-ending states", "[tracker][event]") {
  CHECK(is_final(State::succeeded));
  CHECK(is_final(State::dead));
  CHECK(is_final(State::cancelled));
  CHECK_FALSE(is_final(State::failed));  // a failed attempt may be retried
  CHECK(ends_attempt(State::failed));
  CHECK_FALSE(ends_attempt(State::heartbeat));
  CHECK_FALSE(ends_attempt(State::started));
}

TEST_CASE("entity tags are type:id", "[tracker][event]") {
  CHECK(is_valid_entity("user:42"));
  CHECK(is_valid_entity("invoice:2017-08"));
  CHECK(is_valid_entity("s3.object:bucket/key:with:colons"));
  CHECK_FALSE(is_valid_entity("user"));
  CHECK_FALSE(is_valid_entity(":42"));
  CHECK_FALSE(is_valid_entity("user:"));
  CHECK_FALSE(is_valid_entity("User:42"));
  CHECK_FALSE(is_valid_entity("us er:42"));
}

TEST_CASE("validation says what is wrong", "[tracker][event]") {
  Event event;
  event.job_id = "job-1";
  event.state = State::started;
  CHECK(validation_error(event).empty());

  SECTION("missing job id") {
    event.job_id.clear();
    CHECK(validation_error(event) == "job_id is empty");
  }
  SECTION("unknown state") {
    event.state = static_cast<State>(42);
    CHECK(validation_error(event) == "state 42 is not a known state");
  }
  SECTION("oversized fields name the field and the limit") {
    event.correlation_id.assign(EventLimits::max_id_length + 1, 'x');
    CHECK(validation_error(event) == "correlation_id is 201 bytes long; the limit is 200");
    event.correlation_id.clear();
    event.job.assign(EventLimits::max_name_length + 1, 'j');
    CHECK(validation_error(event) == "job is 201 bytes long; the limit is 200");
  }
  SECTION("over-long free text is no reason to refuse: it is cut") {
    event.error.message.assign(EventLimits::max_message_length + 1, 'm');
    event.worker.assign(EventLimits::max_name_length + 1, 'w');
    CHECK(validation_error(event).empty());
  }
  SECTION("bad entity") {
    event.entities = {"user:1", "nope"};
    CHECK(validation_error(event) == "entity \"nope\" is not of the form type:id (type of a-z, 0-9, _ . -)");
  }
  SECTION("too many entities") {
    event.entities.assign(EventLimits::max_entities + 1, "user:1");
    CHECK(validation_error(event) == "event has 65 entities; the limit is 64");
  }
  SECTION("negative attempt") {
    event.attempt = -1;
    CHECK(validation_error(event) == "attempt is negative");
  }
  SECTION("IDs and names that are not UTF-8 text") {
    event.job_id = std::string("job-\xe9");  // Latin-1
    CHECK(validation_error(event) == "job_id is not UTF-8 text (or holds a NUL byte)");
    event.job_id = "job-1";
    event.queue = std::string("q\0ueue", 6);
    CHECK(validation_error(event) == "queue is not UTF-8 text (or holds a NUL byte)");
    event.queue = "default";
    event.error.error_class = "Encoding\xff";  // free text: repaired by the stores, not refused
    CHECK(validation_error(event).empty());
  }
  SECTION("every field is named in its words, the first fault in the order of the checks") {
    event.state = static_cast<State>(0);
    CHECK(validation_error(event) == "state 0 is not a known state");
    event.state = State::started;
    event.at = -1;
    CHECK(validation_error(event) == "timestamp is negative");
    event.at = 0;
    event.parent_job_id = "parent\xc3";
    CHECK(validation_error(event) == "parent_job_id is not UTF-8 text (or holds a NUL byte)");
    event.idempotency_key.assign(EventLimits::max_id_length + 1, 'k');
    CHECK(validation_error(event) == "parent_job_id is not UTF-8 text (or holds a NUL byte)");
    event.parent_job_id = "parent";
    CHECK(validation_error(event) == "idempotency_key is 201 bytes long; the limit is 200");
    event.idempotency_key = "key";
    event.queue.assign(EventLimits::max_name_length + 1, 'q');
    event.worker = "w\x80";
    CHECK(validation_error(event) == "queue is 201 bytes long; the limit is 200");
    event.queue = "default";
    event.entities = {"nope"};
    CHECK(validation_error(event) == "worker is not UTF-8 text (or holds a NUL byte)");
    event.worker = "w";
    event.entities = {"user:1", std::string("user:\xff")};
    CHECK(validation_error(event) == "entity \"user:\xff\" is not of the form type:id (type of a-z, 0-9, _ . -)");
  }
}

TEST_CASE("UTF-8 text is told from other bytes, and repaired", "[tracker][event]") {
  for (const std::string good : {"", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                 "\xf4\x8f\xbf\xbf"}) {
    INFO(good);
    CHECK(is_utf8_text(good));
    CHECK(to_utf8_text(good) == good);
  }
  const std::string replacement = "\xef\xbf\xbd";
  const std::pair<std::string, std::string> bad[] = {
      {"\x80", replacement},                               // a lone continuation byte
      {"\xc0\x80", replacement + replacement},            // an overlong NUL
      {"\xed\xa0\x80", replacement + replacement + replacement},  // a UTF-16 surrogate
      {"\xf4\x90\x80\x80", replacement + replacement + replacement + replacement},  // above U+10FFFF
      {"caf\xc3", "caf" + replacement},                   // cut in the middle of a character
      {std::string("a\0b", 3), "a" + replacement + "b"},   // NUL
      {"na\xefve", "na" + replacement + "ve"},             // Latin-1
  };
  for (const auto& [text, repaired] : bad) {
    INFO(text);
    CHECK_FALSE(is_utf8_text(text));
    CHECK(to_utf8_text(text) == repaired);
    CHECK(is_utf8_text(to_utf8_text(text)));
  }
}

namespace {
/// Well-formed UTF-8 without NUL, one byte at a time straight from the Unicode standard's table
/// of well-formed byte sequences (Table 3-7): the oracle for is_utf8_text()'s word-wise fast path.
bool reference_utf8_text(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](std::size_t at) { return at < text.size() ? static_cast<unsigned char>(text[at]) : 0x100U; };
    const unsigned lead = byte(i);
    const auto in = [](unsigned value, unsigned low, unsigned high) { return value >= low && value <= high; };
    std::size_t length = 0;
    if (in(lead, 0x01, 0x7F)) length = 1;
    else if (in(lead, 0xC2, 0xDF) && in(byte(i + 1), 0x80, 0xBF)) length = 2;
    else if (lead == 0xE0 && in(byte(i + 1), 0xA0, 0xBF) && in(byte(i + 2), 0x80, 0xBF)) length = 3;
    else if ((in(lead, 0xE1, 0xEC) || in(lead, 0xEE, 0xEF)) && in(byte(i + 1), 0x80, 0xBF) && in(byte(i + 2), 0x80, 0xBF)) length = 3;
    else if (lead == 0xED && in(byte(i + 1), 0x80, 0x9F) && in(byte(i + 2), 0x80, 0xBF)) length = 3;
    else if (lead == 0xF0 && in(byte(i + 1), 0x90, 0xBF) && in(byte(i + 2), 0x80, 0xBF) && in(byte(i + 3), 0x80, 0xBF)) length = 4;
    else if (in(lead, 0xF1, 0xF3) && in(byte(i + 1), 0x80, 0xBF) && in(byte(i + 2), 0x80, 0xBF) && in(byte(i + 3), 0x80, 0xBF)) length = 4;
    else if (lead == 0xF4 && in(byte(i + 1), 0x80, 0x8F) && in(byte(i + 2), 0x80, 0xBF) && in(byte(i + 3), 0x80, 0xBF)) length = 4;
    if (length == 0) return false;
    i += length;
  }
  return true;
}
}  // namespace

TEST_CASE("the word-wise UTF-8 check agrees with a byte-wise one at every length and position",
          "[tracker][event]") {
  // is_utf8_text() reads plain ASCII in words of 8 and 4 bytes, the last overlapping the one
  // before: every length from 0 to 40 crosses each of its cases (1-3, 4-7, 8, 9-15, 16, 17...).
  const std::string bad_bytes[] = {
      std::string(1, '\0'), "\x80", "\xBF", "\xC0", "\xC1", "\xF5", "\xFF",  // never valid
      "\xC3",                                                               // a lead without its tail
      "\xC0\xAF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF",                       // overlong '/'
      "\xED\xA0\x80", "\xED\xBF\xBF",                                       // UTF-16 surrogates
      "\xF4\x90\x80\x80",                                                   // above U+10FFFF
  };
  const std::string good_characters[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xED\x9F\xBF", "\xEF\xBF\xBF",
                                          "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF"};
  for (std::size_t length = 0; length <= 40; ++length) {
    const std::string plain(length, 'a');
    INFO("length " << length);
    CHECK(is_utf8_text(plain));
    for (std::size_t at = 0; at < length; ++at) {
      INFO("at " << at);
      for (const std::string& bad : bad_bytes) {
        // A bad sequence at every position, cut short by the end of the text (still bad).
        std::string text = plain;
        text.replace(at, std::min(bad.size(), length - at), bad.substr(0, length - at));
        INFO("bad sequence " << Catch::Detail::stringify(bad));
        CHECK(is_utf8_text(text) == reference_utf8_text(text));
        CHECK_FALSE(is_utf8_text(text));
      }
      for (const std::string& good : good_characters) {
        // A multibyte character starting at every position, so some straddle a word's edge;
        // cut short by the end of the text, it is bad.
        std::string text = plain;
        text.replace(at, std::min(good.size(), length - at), good.substr(0, length - at));
        INFO("character " << Catch::Detail::stringify(good));
        CHECK(is_utf8_text(text) == reference_utf8_text(text));
        CHECK(is_utf8_text(text) == (at + good.size() <= length));
      }
    }
  }
  // Every single byte, and every byte after a character that ends right at a word's edge.
  for (unsigned value = 0; value < 256; ++value) {
    const std::string byte(1, static_cast<char>(value));
    for (const std::string& text : {byte, std::string(7, 'a') + byte, std::string(5, 'a') + "\xE2\x82\xAC" + byte + "bcdefgh"}) {
      INFO(Catch::Detail::stringify(text));
      CHECK(is_utf8_text(text) == reference_utf8_text(text));
    }
  }
}

TEST_CASE("over-long free text is cut to its limit, marked, between characters", "[tracker][event]") {
  Event event;
  event.job_id = "job-1";
  event.state = State::failed;
  const std::string marker(truncation_marker);

  SECTION("texts within their limits are left alone") {
    event.error = {"E", std::string(EventLimits::max_message_length, 'm'), "bt"};
    event.worker = std::string(EventLimits::max_name_length, 'w');
    const Event before = event;
    CHECK_FALSE(has_over_long_text(event));
    CHECK_FALSE(truncate_free_text(event).any());
    CHECK(event == before);
  }
  SECTION("each long field is cut and named") {
    event.error.message.assign(9 * 1024, 'm');
    event.error.backtrace.assign(EventLimits::max_backtrace_length + 1, 'b');
    CHECK(has_over_long_text(event));
    const Truncation cut = truncate_free_text(event);
    CHECK(cut.message);
    CHECK(cut.backtrace);
    CHECK_FALSE(cut.worker);
    CHECK(cut.fields() == std::vector<std::string_view>{"error.message", "error.backtrace"});
    CHECK(event.error.message.size() == EventLimits::max_message_length);
    CHECK(event.error.message == std::string(EventLimits::max_message_length - marker.size() - 11, 'm') + marker +
                                     "9216 bytes]");
    CHECK(event.error.backtrace.ends_with(marker + "65537 bytes]"));
    // Cut once: a cut text fits, so a second pass (the store after the tracker) changes nothing.
    const Event once = event;
    CHECK_FALSE(truncate_free_text(event).any());
    CHECK(event == once);
  }
  SECTION("a multi-byte character is never split") {
    std::string euros;
    while (euros.size() < 9000) euros += "\xe2\x82\xac";  // U+20AC, three bytes
    event.error.message = euros;
    truncate_free_text(event);
    CHECK(is_utf8_text(event.error.message));
    CHECK(event.error.message.size() <= EventLimits::max_message_length);
  }
}

TEST_CASE("the time rule refuses 1970, the far future and the wrong unit", "[tracker][event]") {
  const Micros now = 1'790'000'000'000'000;  // 2026-09-21
  CHECK(is_plausible_event_time(now, now));
  CHECK(is_plausible_event_time(EventTimeRule::earliest, now));
  CHECK_FALSE(is_plausible_event_time(EventTimeRule::earliest - 1, now));
  CHECK(is_plausible_event_time(now + EventTimeRule::max_ahead, now));
  CHECK_FALSE(is_plausible_event_time(now + EventTimeRule::max_ahead + 1, now));
  CHECK_FALSE(guess_time_unit(now, now));
  CHECK(guess_time_unit(now / 1'000'000, now)->unit == "seconds");
  CHECK(guess_time_unit(now / 1'000, now)->unit == "milliseconds");
  CHECK(guess_time_unit(now * 1'000, now)->unit == "nanoseconds");
  CHECK(guess_time_unit(now * 1'000, now)->micros == now);
  CHECK(event_time_problem(now, now).empty());
  CHECK(event_time_problem(1, now) == "at 1 is before 2000-01-01: a clock that is wrong, or the wrong unit (send microseconds)");
  CHECK(event_time_problem(now * 1000, now) ==
        "at 1790000000000000000 is more than a day ahead of the clock: it reads as nanoseconds since the epoch; "
        "send microseconds");
}
