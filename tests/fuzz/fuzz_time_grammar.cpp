// The one duration and time grammar (view/time_format: every command, the HTTP API and
// checks.yaml) with any bytes. A duration that parses prints and reparses to the
// same value (in an exact spelling; the compact display spelling reparses to at most it);
// a time that parses prints as RFC 3339 and reparses to the same instant.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "jobtrail/view/time_format.h"

namespace {

using jobtrail::Micros;

// 2026-12-02T12:00:00Z: "24h" means a day before it.
constexpr Micros fuzz_now = 1'796'212'800'000'000;

[[noreturn]] void fail(const char* what, std::string_view input, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s: '%.*s' -> %s\n", what, static_cast<int>(input.size()), input.data(),
               detail.c_str());
  std::abort();
}

/// `span` (>= 0) spelt in every unit down to `smallest` ("us", the grammar's finest), largest
/// first, e.g. "1d2h0m3s4ms5us".
std::string exact_spelling(Micros span, std::string_view smallest) {
  struct Unit {
    const char* name;
    Micros length;
  };
  constexpr Unit units[] = {{"d", 86'400'000'000}, {"h", 3'600'000'000}, {"m", 60'000'000},
                            {"s", 1'000'000},      {"ms", 1'000},        {"us", 1}};
  std::string text;
  for (const Unit& unit : units) {
    const bool last = unit.name == smallest;
    if (span >= unit.length || (last && text.empty())) {
      text += std::to_string(span / unit.length) + unit.name;
      span %= unit.length;
    }
    if (last) break;
  }
  return span == 0 ? text : "";  // "" when the grammar cannot spell it: never parses
}

template <typename Parse, typename Format>
void check_duration(const char* grammar, std::string_view smallest, std::string_view text, Parse parse, Format format) {
  const std::optional<Micros> span = parse(text);
  if (!span) return;
  if (*span < 0) fail(grammar, text, "a negative duration " + std::to_string(*span));
  const std::string exact = exact_spelling(*span, smallest);
  const std::optional<Micros> again = parse(exact);
  if (!again || *again != *span) fail(grammar, text, exact + " does not reparse to " + std::to_string(*span));
  const std::string shown = format(*span);
  const std::optional<Micros> shown_again = parse(shown);
  // The display spelling truncates ("1h30m"), never rounds up.
  if (shown_again && *shown_again > *span) fail(grammar, text, shown + " reparses to more");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The parser also says whether a refusal was for length; the harness needs the value.
  const auto parse = [](std::string_view spelled) { return jobtrail::view::parse_duration(spelled); };
  check_duration("duration", "us", text, parse, jobtrail::view::format_duration);
  bool too_long = false;
  if (jobtrail::view::parse_duration(text, &too_long) && too_long) fail("duration", text, "accepted and too long");

  if (const std::optional<Micros> at = jobtrail::view::parse_time(text, fuzz_now)) {
    // Years 0000 to 9999 have an RFC 3339 spelling; nothing else should parse to begin with.
    if (*at < -62'167'219'200'000'000 || *at > 253'402'300'799'999'999) {
      fail("time", text, "outside the years 0 to 9999: " + std::to_string(*at));
    }
    const std::string shown = jobtrail::view::format_rfc3339(*at);
    const std::optional<Micros> again = jobtrail::view::parse_time(shown, fuzz_now);
    if (!again || *again != *at) fail("time", text, shown + " does not reparse to " + std::to_string(*at));
    (void)jobtrail::view::format_timestamp(*at);
    (void)jobtrail::view::format_rfc3339_seconds(*at);
  }
  return 0;
}
