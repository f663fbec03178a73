#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "jobtrail/context.h"

using namespace jobtrail;

namespace {

bool is_lower_hex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("a new correlation ID has the shape of a W3C trace ID and does not repeat", "[tracker][context]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_correlation_id();
    REQUIRE(id.size() == 32);
    REQUIRE(is_lower_hex(id));
    REQUIRE(id != std::string(32, '0'));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("threads do not share correlation IDs", "[tracker][context]") {
  std::string from_other_thread;
  std::thread other([&] { from_other_thread = new_correlation_id(); });
  const std::string here = new_correlation_id();
  other.join();
  CHECK(here != from_other_thread);
}

TEST_CASE("a valid traceparent header gives its trace ID", "[tracker][context]") {
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  CHECK(correlation_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == trace_id);
  CHECK(correlation_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00") == trace_id);
  // Header values arrive with the whitespace of the HTTP line around them.
  CHECK(correlation_from_traceparent("  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t\r\n") == trace_id);
  // A later version may add fields after a dash; a version-00 parser reads what it knows.
  CHECK(correlation_from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == trace_id);
  CHECK(correlation_from_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds") ==
        trace_id);
}

TEST_CASE("a malformed traceparent header gives nothing", "[tracker][context]") {
  const char* invalid = GENERATE(
      "",                                                            // empty
      "   ",                                                         // blank
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        // no flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",    // version 00 has no more fields
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    // version 00 is exactly 55 chars
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version ff is forbidden
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version not hex
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    // a later version still needs '-' after flags
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     // upper-case trace ID
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // all-zero trace ID
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // all-zero parent ID
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",     // dash in the wrong place
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",     // wrong separators
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",     // flags not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",     // parent ID not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736 -00f067aa0ba902b7-01");   // space inside
  INFO(invalid);
  CHECK_FALSE(correlation_from_traceparent(invalid));
}

TEST_CASE("correlation scopes nest and restore what was there", "[tracker][context]") {
  CHECK(current_correlation_id().empty());
  {
    CorrelationScope request("request-a");
    CHECK(current_correlation_id() == "request-a");
    {
      CorrelationScope inner("request-b");
      CHECK(current_correlation_id() == "request-b");
    }
    CHECK(current_correlation_id() == "request-a");
    // The context is the thread's own.
    std::string seen_by_other_thread = "unset";
    std::thread([&] { seen_by_other_thread = current_correlation_id(); }).join();
    CHECK(seen_by_other_thread.empty());
  }
  CHECK(current_correlation_id().empty());
}

TEST_CASE("a job's context swap sets the job and restores the outer context", "[tracker][context]") {
  CorrelationScope request("request-a");
  {
    detail::ContextSwap job("trace-of-job", "job-1");
    CHECK(current_correlation_id() == "trace-of-job");
    CHECK(current_job_id() == "job-1");
    {
      // A request handled inside a job starts a trace of its own: the job is not its parent.
      CorrelationScope nested_request("request-b");
      CHECK(current_correlation_id() == "request-b");
      CHECK(current_job_id().empty());
    }
    CHECK(current_correlation_id() == "trace-of-job");
    CHECK(current_job_id() == "job-1");
  }
  CHECK(current_correlation_id() == "request-a");
  CHECK(current_job_id().empty());
}
