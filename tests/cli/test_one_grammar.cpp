// One duration grammar: what a command line accepts (`exec --every 1.5h`, `prune
// --older-than`), checks.yaml accepts (`deadline: 1.5h`), with the same value, and what one
// refuses the other refuses. Before the view layer the checker had a parser of its own that
// refused "1.5h" and "850us".

#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "cli_error.h"
#include "global_options.h"
#include "jobtrail/checker.h"

using namespace jobtrail;

namespace {

/// The value the command line reads from `text` for --every, or nothing when it refuses it.
std::optional<Micros> as_option(const std::string& text) {
  try {
    return cli::parse_duration_argument("--every", text);
  } catch (const cli::CliError&) {
    return std::nullopt;
  }
}

/// The deadline checks.yaml reads from `text`, or nothing when the config is refused.
std::optional<Micros> as_deadline(const std::string& text) {
  try {
    const check::Config config =
        check::parse_config("builtin:\n  stuck_jobs:\n    deadline: \"" + text + "\"\n", "checks.yaml");
    for (const check::CheckDefinition& definition : config.checks) {
      if (definition.name == "stuck_jobs") return definition.deadlines.deadline;
    }
    FAIL("stuck_jobs is missing from the config");
  } catch (const check::ConfigError&) {
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("the command line and checks.yaml accept and refuse the same durations", "[cli][checker][time]") {
  // Accepted by both, with one value.
  for (const char* text : {"1.5h", "90s", "15m", "24h", "7d", "250ms", "850us", "850µs", "1h30m", "3m05s", "2d04h",
                           "0.5s", "366000d", "365999d23h59m59s999ms1000us"}) {
    INFO(text);
    const std::optional<Micros> option = as_option(text);
    REQUIRE(option);
    CHECK(as_deadline(text) == option);
  }
  CHECK(as_option("1.5h") == 5'400'000'000);
  // Refused by both. (0s is a valid duration but no valid deadline: checks.yaml wants a
  // positive one, which is a rule of the deadline, not of the grammar.)
  for (const char* text : {"", "30", "1.5", "h", "1x", "1 h", "1H", "-5m", "1.h", ".5h", "1.0000001s", "366000d1us",
                           "366001d", "99999999999999999999d", "soon", "1h 30m", "1e3s", "１h"}) {
    INFO(text);
    CHECK_FALSE(as_option(text));
    CHECK_FALSE(as_deadline(text));
  }
}
