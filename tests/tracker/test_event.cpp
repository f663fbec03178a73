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
    event.error.message.assign(EventLimits::max_message_length + 1, 'm');
    CHECK(validation_error(event).rfind("error message is 8193 bytes long", 0) == 0);
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
