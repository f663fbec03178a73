// The ingest decoder on its own: what a worker's client sends, good and bad.

#include <catch2/catch.hpp>

#include "jobtrail/ingest.h"

using namespace jobtrail;

namespace {

std::string reasons(const DecodedEvents& decoded) {
  std::string all;
  for (const RejectedEvent& item : decoded.rejected) all += std::to_string(item.position) + ": " + item.reason + "\n";
  return all;
}

}  // namespace

TEST_CASE("one JSON object with every field is one event", "[server]") {
  const DecodedEvents decoded = decode_events(R"({
    "job_id": "j1", "state": "failed", "at": "2026-11-22T10:00:00.5Z", "job": "WelcomeEmailJob",
    "queue": "mailers", "correlation_id": "c1", "parent_job_id": "p1", "idempotency_key": "k1",
    "attempt": 2, "worker": "host:1", "entities": ["user:42"],
    "error": {"class": "Net::ReadTimeout", "message": "timed out", "backtrace": "a.rb:1"}})");
  REQUIRE(decoded.body_error.empty());
  REQUIRE(decoded.rejected.empty());
  REQUIRE(decoded.shape == BodyShape::object);
  REQUIRE(decoded.events.size() == 1);
  const Event& event = decoded.events[0].event();
  CHECK(event.job_id == "j1");
  CHECK(event.state == State::failed);
  CHECK(event.at == 1795341600500000);
  CHECK(event.job == "WelcomeEmailJob");
  CHECK(event.queue == "mailers");
  CHECK(event.correlation_id == "c1");
  CHECK(event.parent_job_id == "p1");
  CHECK(event.idempotency_key == "k1");
  CHECK(event.attempt == 2);
  CHECK(event.worker == "host:1");
  CHECK(event.entities == std::vector<std::string>{"user:42"});
  CHECK(event.error == ErrorInfo{"Net::ReadTimeout", "timed out", "a.rb:1"});
}

TEST_CASE("an event survives a round trip through its JSON", "[server]") {
  Event event;
  event.job_id = "j1";
  event.state = State::dead;
  event.at = 1795341600123456;
  event.job = "PaymentJob";
  event.correlation_id = "c";
  event.attempt = 3;
  event.error = {"E", "it broke", ""};
  event.entities = {"invoice:7"};
  Event decoded;
  REQUIRE(decode_event(event_to_json(event), decoded).empty());
  CHECK(decoded == event);
}

TEST_CASE("at is integer microseconds or RFC 3339, and seconds are refused", "[server]") {
  Event event;
  CHECK(decode_event(R"({"job_id":"a","state":"started","at":1795341600123456})", event).empty());
  CHECK(event.at == 1795341600123456);
  CHECK(decode_event(R"({"job_id":"a","state":"started","at":1795341600})", event).find("as seconds since the epoch") !=
        std::string::npos);
  CHECK(decode_event(R"({"job_id":"a","state":"started","at":"yesterday"})", event).find("RFC 3339") !=
        std::string::npos);
  CHECK(decode_event(R"({"job_id":"a","state":"started","at":"24h"})", event).find("RFC 3339") != std::string::npos);
}

TEST_CASE("a traceparent header becomes the correlation ID", "[server]") {
  Event event;
  REQUIRE(decode_event(R"({"job_id":"a","state":"enqueued",
      "traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})", event).empty());
  CHECK(event.correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(decode_event(R"({"job_id":"a","state":"enqueued","traceparent":"nonsense"})", event).find("traceparent") !=
        std::string::npos);
}

TEST_CASE("malformed events are refused with the field and the reason", "[server]") {
  const auto reason = [](const char* text) {
    Event event;
    return decode_event(text, event);
  };
  CHECK(reason(R"({"state":"enqueued"})") == "job_id is missing");
  CHECK(reason(R"({"job_id":"","state":"enqueued"})") == "job_id is empty");
  CHECK(reason(R"({"job_id":42,"state":"enqueued"})") == "job_id must be a string, not a number");
  CHECK(reason(R"({"job_id":"a"})") == "state is missing");
  CHECK(reason(R"({"job_id":"a","state":"done"})").starts_with("unknown state 'done' (valid: enqueued, started"));
  CHECK(reason(R"({"job_id":"a","state":"enqueued","attempt":"2"})") == "attempt must be an integer, not a string");
  CHECK(reason(R"({"job_id":"a","state":"enqueued","attempt":1.5})") ==
        "attempt must be an integer, not a fractional number");
  CHECK(reason(R"({"job_id":"a","state":"enqueued","attempt":-1})").starts_with("attempt -1 is out of range"));
  CHECK(reason(R"({"job_id":"a","state":"enqueued","queue":["q"]})") == "queue must be a string, not an array");
  CHECK(reason(R"({"job_id":"a","state":"enqueued","entities":"user:1"})").starts_with("entities must be an array"));
  CHECK(reason(R"({"job_id":"a","state":"enqueued","entities":["nocolon"]})").find("entit") != std::string::npos);
  CHECK(reason(R"({"job_id":"a","state":"enqueued","error":{"klass":"E"}})").starts_with("unknown field 'error.klass'"));
  CHECK(reason(R"({"job_id":"a","state":"enqueued","correlation":"c"})") == "unknown field 'correlation'");
  CHECK(reason(R"(["not", "an object"])") == "an event must be a JSON object, not an array");
  CHECK(reason(R"({"job_id":"a","state":"enq)").starts_with("not valid JSON: parse error at line 1"));
}

TEST_CASE("over-long fields are refused by the event limits", "[server]") {
  Event event;
  const std::string long_id(EventLimits::max_id_length + 1, 'x');
  CHECK(decode_event(R"({"job_id":")" + long_id + R"(","state":"enqueued"})", event).find("job_id") !=
        std::string::npos);
  // A long message is cut, not refused: the failure must not vanish because it said a lot.
  const std::string long_message(EventLimits::max_message_length + 1, 'm');
  CHECK(decode_event(R"({"job_id":"a","state":"failed","error":")" + long_message + R"("})", event).empty());
  CHECK(event.error.message.ends_with(std::string(truncation_marker) + "8193 bytes]"));
  const DecodedEvents decoded = decode_events(R"({"job_id":"ok","state":"started"})" "\n"
                                              R"({"job_id":"a","state":"failed","error":")" + long_message + R"("})",
                                              {});
  REQUIRE(decoded.events.size() == 2);
  REQUIRE(decoded.truncated.size() == 1);
  CHECK(decoded.truncated[0].position == 2);  // its NDJSON line
  CHECK(decoded.truncated[0].fields.message);
  std::string many = R"({"job_id":"a","state":"enqueued","entities":[)";
  for (std::size_t i = 0; i <= EventLimits::max_entities; ++i) many += (i ? ",\"u:" : "\"u:") + std::to_string(i) + "\"";
  CHECK(decode_event(many + "]}", event).starts_with("entities has 65 items"));
}

TEST_CASE("invalid UTF-8 is refused, not stored", "[server]") {
  Event event;
  const std::string bad = std::string(R"({"job_id":"a)") + "\xff\xfe" + R"(","state":"enqueued"})";
  CHECK(decode_event(bad, event).find("UTF-8") != std::string::npos);
}

TEST_CASE("an NDJSON batch with one bad line keeps the good ones and names the line", "[server]") {
  const DecodedEvents decoded = decode_events(
      "{\"job_id\":\"a\",\"state\":\"enqueued\"}\n"
      "\n"
      "{\"job_id\":\"b\",\"state\":\"exploded\"}\n"
      "{\"job_id\":\"c\",\"state\":\"enqueued\"}\r\n"
      "{\"job_id\":\"d\",\"sta\n");
  REQUIRE(decoded.body_error.empty());
  CHECK(decoded.shape == BodyShape::ndjson);
  REQUIRE(decoded.events.size() == 2);
  CHECK(decoded.events[0].event().job_id == "a");
  CHECK(decoded.events[1].event().job_id == "c");
  CHECK(decoded.positions == std::vector<std::size_t>{1, 4});
  REQUIRE(decoded.rejected.size() == 2);
  CHECK(decoded.rejected[0].position == 3);
  CHECK(decoded.rejected[0].reason.starts_with("unknown state 'exploded'"));
  CHECK(decoded.rejected[1].position == 5);
  CHECK(decoded.rejected[1].reason.starts_with("not valid JSON"));
  INFO(reasons(decoded));
}

TEST_CASE("a JSON array is checked element by element, but a truncated one is refused whole", "[server]") {
  const DecodedEvents mixed = decode_events(R"([{"job_id":"a","state":"enqueued"}, {"job_id":"b"}, 7])");
  REQUIRE(mixed.body_error.empty());
  CHECK(mixed.shape == BodyShape::array);
  CHECK(mixed.events.size() == 1);
  REQUIRE(mixed.rejected.size() == 2);
  CHECK(mixed.rejected[0].position == 1);
  CHECK(mixed.rejected[0].reason == "state is missing");
  CHECK(mixed.rejected[1].position == 2);

  const DecodedEvents truncated = decode_events(R"([{"job_id":"a","state":"enqueued"}, {"job_id":"b")");
  CHECK(truncated.body_error.starts_with("not valid JSON"));
  CHECK(truncated.events.empty());
}

TEST_CASE("empty bodies and too many events are refused as a whole", "[server]") {
  CHECK(!decode_events("  \n").body_error.empty());
  DecodeOptions options;
  options.max_events = 2;
  std::string lines;
  for (int i = 0; i < 3; ++i) lines += R"({"job_id":"a","state":"enqueued"})" "\n";
  const DecodedEvents decoded = decode_events(lines, options);
  CHECK(decoded.too_many);
  CHECK(decoded.events.empty());
  const std::string array = R"([{"job_id":"a","state":"enqueued"},{"job_id":"b","state":"enqueued"},)"
                            R"({"job_id":"c","state":"enqueued"}])";
  CHECK(decode_events(array, options).body_error == "more than 2 events in one body");
}

TEST_CASE("a single line sent as NDJSON is NDJSON, and a pretty-printed object is one event", "[server]") {
  DecodeOptions ndjson;
  ndjson.ndjson = true;
  const DecodedEvents one = decode_events(R"({"job_id":"a","state":"enqueued"})", ndjson);
  CHECK(one.shape == BodyShape::ndjson);
  CHECK(one.events.size() == 1);
  const DecodedEvents pretty = decode_events("{\n  \"job_id\": \"a\",\n  \"state\": \"enqueued\"\n}\n");
  CHECK(pretty.shape == BodyShape::object);
  CHECK(pretty.events.size() == 1);
}

namespace {

// 2026-12-02T12:00:00Z: the receiver's clock in the tests of the time rule.
constexpr Micros test_now = 1'796'212'800'000'000;

std::string at_problem(const std::string& at) {
  Event event;
  return decode_event(R"({"job_id":"a","state":"started","at":)" + at + "}", event, test_now);
}

}  // namespace

TEST_CASE("both forms of at follow one rule: before 2000 or a day ahead is refused with the reason", "[server][time]") {
  // The same instant in both forms gets the same answer, whatever it is.
  const std::pair<const char*, const char*> same_instants[] = {
      {R"("1991-11-22T10:00:00.120Z")", "690804000120000"},
      {R"("2026-11-22T10:00:00.120Z")", "1795341600120000"},
      {R"("1999-12-31T23:59:59.999999Z")", "946684799999999"},
      {R"("2000-01-01T00:00:00Z")", "946684800000000"},
      {R"("2026-12-03T12:00:00Z")", "1796299200000000"},          // exactly a day ahead: skew
      {R"("2026-12-03T12:00:00.000001Z")", "1796299200000001"},  // a day and a microsecond
      {R"("1969-12-31T23:59:59Z")", "-1000000"},
  };
  for (const auto& [text, micros] : same_instants) {
    INFO(text << " vs " << micros);
    CHECK(at_problem(text).empty() == at_problem(micros).empty());
  }
  CHECK(at_problem(R"("2026-11-22T10:00:00.120Z")").empty());
  CHECK(at_problem("946684800000000").empty());
  CHECK(at_problem("1796299200000000").empty());

  const std::string old = at_problem(R"("1991-11-22T10:00:00.120Z")");
  CHECK(old == "at '1991-11-22T10:00:00.120Z' is 1991-11-22T10:00:00.120000Z, before 2000-01-01: a clock that was "
               "never set, or the wrong unit (send microseconds)");
  CHECK(at_problem("690804000120000").find("before 2000-01-01") != std::string::npos);
  CHECK(at_problem(R"("2026-12-03T12:00:00.000001Z")").find("more than a day ahead") != std::string::npos);
}

TEST_CASE("an at in the wrong unit is refused and the message names the unit", "[server][time]") {
  // 2026-11-22T10:00:00.120Z in seconds, milliseconds and nanoseconds.
  CHECK(at_problem("1795341600").find("as seconds since the epoch it would be 2026-11-22T10:00:00.000000Z") !=
        std::string::npos);
  CHECK(at_problem("1795341600120").find("as milliseconds since the epoch it would be 2026-11-22T10:00:00.120000Z") !=
        std::string::npos);
  // Accepted before this rule, and shown as a job in the year -6674 (issue 13).
  const std::string nanos = at_problem("1795341600120000000");
  CHECK(nanos.find("more than a day ahead") != std::string::npos);
  CHECK(nanos.find("as nanoseconds since the epoch it would be 2026-11-22T10:00:00.120000Z") != std::string::npos);
  // No unit makes these plausible: the message still says why.
  CHECK(at_problem("0").find("before 2000-01-01: a clock that was never set") != std::string::npos);
  CHECK(at_problem("9223372036854775807").find("outside the years 1 to 9999") != std::string::npos);
  CHECK(at_problem("-9223372036854775807").find("before 2000-01-01") != std::string::npos);
  CHECK(at_problem("18446744073709551615").find("out of range") != std::string::npos);
}

TEST_CASE("a number no double can hold is that event's error, never the batch's", "[server][hostile]") {
  SECTION("in an object") {
    const DecodedEvents decoded = decode_events(R"({"job_id":"a","state":"started","attempt":3e476})");
    CHECK(decoded.body_error.empty());
    CHECK(decoded.events.empty());
    REQUIRE(decoded.rejected.size() == 1);
    CHECK(decoded.rejected[0].position == 0);
    CHECK(decoded.rejected[0].reason.find("too large to represent") != std::string::npos);
    CHECK(decoded.rejected[0].reason.find("3e476") != std::string::npos);
  }
  SECTION("in an array, among good events") {
    const DecodedEvents decoded = decode_events(R"([{"job_id":"a","state":"enqueued"},)"
                                                R"({"job_id":"b","state":"started","attempt":3e476},)"
                                                R"(-1e999, {"job_id":"c","state":"enqueued","at":1E+400},)"
                                                R"({"job_id":"d","state":"enqueued","entities":["x:1"]}])");
    INFO(reasons(decoded));
    CHECK(decoded.body_error.empty());
    REQUIRE(decoded.events.size() == 2);
    CHECK(decoded.events[0].event().job_id == "a");
    CHECK(decoded.events[1].event().job_id == "d");
    CHECK(decoded.positions == std::vector<std::size_t>{0, 4});
    REQUIRE(decoded.rejected.size() == 3);
    CHECK(decoded.rejected[0].position == 1);
    CHECK(decoded.rejected[1].position == 2);
    CHECK(decoded.rejected[2].position == 3);
  }
  SECTION("as an NDJSON line, and inside one") {
    const DecodedEvents decoded = decode_events("{\"job_id\":\"a\",\"state\":\"enqueued\"}\n3e476\n"
                                                "{\"job_id\":\"b\",\"state\":\"enqueued\",\"attempt\":3e476}\n"
                                                "{\"job_id\":\"c\",\"state\":\"enqueued\"}\n");
    INFO(reasons(decoded));
    CHECK(decoded.shape == BodyShape::ndjson);
    REQUIRE(decoded.events.size() == 2);
    CHECK(decoded.positions == std::vector<std::size_t>{1, 4});
    REQUIRE(decoded.rejected.size() == 2);
    CHECK(decoded.rejected[0].position == 2);
    CHECK(decoded.rejected[1].position == 3);
  }
  SECTION("alone, and in a pretty-printed object") {
    const DecodedEvents bare = decode_events("3e476");
    CHECK(bare.body_error.empty());
    REQUIRE(bare.rejected.size() == 1);
    const DecodedEvents pretty = decode_events("{\n  \"job_id\": \"a\",\n  \"state\": \"started\",\n  \"attempt\": 3e476\n}");
    CHECK(pretty.shape == BodyShape::object);
    REQUIRE(pretty.rejected.size() == 1);
    CHECK(pretty.rejected[0].reason.find("too large") != std::string::npos);
  }
  SECTION("integers beyond int64 are out of range, not wrapped") {
    Event event;
    CHECK(decode_event(R"({"job_id":"a","state":"started","attempt":18446744073709551615})", event) ==
          "attempt 18446744073709551615 is out of range (0 to 2147483647)");
  }
}

TEST_CASE("an array is split without building it, and what does not balance is refused whole", "[server][hostile]") {
  CHECK(decode_events("[]").rejected.empty());
  CHECK(decode_events("[]").events.empty());
  CHECK(decode_events("[ ]").body_error.empty());
  for (const char* broken : {"[}", "[{]}", "[1,]", "[,1]", "[1 2]", R"(["a]")", "[[]", "[]]", "[] x", R"(["\"])"}) {
    INFO(broken);
    CHECK(decode_events(broken).body_error.starts_with("not valid JSON"));
  }
  // Brackets and quotes inside strings do not count.
  const DecodedEvents strings = decode_events(R"([{"job_id":"a],\"[{","state":"enqueued"},{"job_id":"}","state":"enqueued"}])");
  INFO(reasons(strings));
  REQUIRE(strings.events.size() == 2);
  CHECK(strings.events[0].event().job_id == "a],\"[{");
  CHECK(strings.events[1].event().job_id == "}");
  // 100,000 levels: named as element 0's problem, with no recursion anywhere.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const DecodedEvents nested = decode_events("[" + deep + "]");
  CHECK(nested.body_error.empty());
  REQUIRE(nested.rejected.size() == 1);
  CHECK(nested.rejected[0].reason == "an event must be a JSON object, not an array");
}

TEST_CASE("a duplicate key refuses its event: which value counts would be a guess", "[server][hostile]") {
  const DecodedEvents decoded = decode_events(
      "{\"job_id\":\"a\",\"state\":\"enqueued\"}\n"
      "{\"job_id\":\"b\",\"state\":\"succeeded\",\"state\":\"failed\"}\n"
      "{\"job_id\":\"c\",\"state\":\"failed\",\"error\":{\"message\":\"x\",\"message\":\"y\"}}\n"
      "{\"job_id\":\"d\",\"state\":\"enqueued\",\"error\":{\"message\":\"job_id\"},\"queue\":\"job_id\"}\n");
  INFO(reasons(decoded));
  REQUIRE(decoded.events.size() == 2);
  CHECK(decoded.positions == std::vector<std::size_t>{1, 4});
  REQUIRE(decoded.rejected.size() == 2);
  CHECK(decoded.rejected[0].reason == "duplicate key 'state': which of its values counts is ambiguous");
  CHECK(decoded.rejected[1].reason == "duplicate key 'message': which of its values counts is ambiguous");
}
