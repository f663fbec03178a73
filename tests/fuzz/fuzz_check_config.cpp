// The checks file loader with any bytes: a bad file is a ConfigError (with its line), never
// another exception, a crash or a hang; a file that loads has named checks.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "jobtrail/checker.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const jobtrail::check::Config config = jobtrail::check::parse_config(text, "/fuzz/checks.yaml");
    for (const auto& check : config.checks) {
      if (check.name.empty()) {
        std::fprintf(stderr, "invariant broken: a check without a name loaded\n");
        std::abort();
      }
    }
  } catch (const jobtrail::check::ConfigError&) {
    // The one way a checks file may be refused. Anything else escapes and is a finding.
  }
  return 0;
}
