// The ingest decoder (object, array and NDJSON bodies) with any bytes. Beyond "no crash and
// no exception": every accepted event passes the tracker's validation and the time rule, and
// survives a round trip through its JSON; every event is accounted for once.

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>

#include "jobtrail/view/event_time.h"
#include "jobtrail/ingest.h"

namespace {

// 2026-12-02T12:00:00Z: a fixed clock, so a finding replays the same way tomorrow.
constexpr jobtrail::Micros fuzz_now = 1'796'212'800'000'000;

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "invariant broken: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void check(const jobtrail::DecodedEvents& decoded, const jobtrail::DecodeOptions& options) {
  using namespace jobtrail;
  if (decoded.positions.size() != decoded.events.size()) fail("positions and events differ in count");
  if (!decoded.body_error.empty() && (!decoded.events.empty() || !decoded.rejected.empty())) {
    fail("a body error with events kept or rejected", decoded.body_error);
  }
  if (decoded.too_many && decoded.body_error.empty()) fail("too_many without a body error");
  if (decoded.events.size() + decoded.rejected.size() > options.max_events) fail("more events than max_events");
  for (const RejectedEvent& rejected : decoded.rejected) {
    if (rejected.reason.empty()) fail("a rejection without a reason");
  }
  for (std::size_t i = 1; i < decoded.positions.size(); ++i) {
    if (decoded.positions[i] <= decoded.positions[i - 1]) fail("events out of body order");
  }
  for (const CheckedEvent& checked : decoded.events) {
    const Event& event = checked.event();
    if (std::string problem = validation_error(event); !problem.empty()) fail("accepted but invalid:", problem);
    if (event.at != 0 && !view::implausible_event_time(event.at, fuzz_now).empty()) fail("accepted an implausible at");
    const std::string json = event_to_json(event);
    Event again;
    if (std::string problem = decode_event(json, again, fuzz_now); !problem.empty()) {
      fail("its own JSON is refused:", problem + " in " + json);
    }
    if (!(again == event)) fail("changed in a round trip through", json);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const bool ndjson : {false, true}) {
    jobtrail::DecodeOptions options;
    options.max_events = 64;  // small, so the limit is reached too
    options.ndjson = ndjson;
    options.now = fuzz_now;
    check(jobtrail::decode_events(body, options), options);
  }
  return 0;
}
