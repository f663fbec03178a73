// The W3C traceparent parser with any bytes: what it accepts is a trace ID as the spec
// defines it (32 lower-case hex digits, not all zero), taken from the header's own bytes.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "jobtrail/context.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const std::optional<std::string> trace_id = jobtrail::correlation_from_traceparent(header);
  if (!trace_id) return 0;
  bool hex = trace_id->size() == 32;
  bool all_zero = true;
  for (const char c : *trace_id) {
    hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    all_zero = all_zero && c == '0';
  }
  if (!hex || all_zero || header.find(*trace_id) == std::string_view::npos) {
    std::fprintf(stderr, "invariant broken: accepted trace ID '%s'\n", trace_id->c_str());
    std::abort();
  }
  return 0;
}
