#pragma once
// The shared views the console shows jobs with (durations, times, spans, state names), so that
// a page says what `jobtrail show` says. They live in cli_lib until the view layer of issue 12
// moves them below cli/ and server/; this is the one file of the console that names cli/.

#include "job_view.h"
#include "time_format.h"

namespace jobtrail::console::view {
using cli::anomaly_names;
using cli::format_duration;
using cli::format_rfc3339;
using cli::format_span;
using cli::format_timestamp;
using cli::job_state_names;
using cli::parse_duration;
using cli::parse_job_state;
using cli::parse_time;
using cli::run_span;
using cli::Span;
using cli::time_syntax_help;
using cli::wait_span;
}  // namespace jobtrail::console::view
