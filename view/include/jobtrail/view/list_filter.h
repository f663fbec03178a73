#pragma once
/// \file
/// The filter of a job list, from the text a person types (`jobtrail ls --since 24h`) or a
/// client sends (`GET /v1/jobs?since=24h`): one reading, so the two always agree.

#include <cstddef>
#include <string>
#include <string_view>

#include "jobtrail/store.h"

namespace jobtrail::view {

/// The terms set_filter_term knows, for help texts and messages.
inline constexpr const char* filter_term_names = "state, job, queue, entity, since, until, anomalies, limit";

/// Sets the term `name` (one of filter_term_names) of `filter` from `value`. Returns "" when
/// done, else why not, naming the term as the caller's user spells it (`shown_as`: "--since"
/// on the command line, "since" over HTTP) and quoting the value as given (escape it before
/// showing it). `now` anchors relative times ("24h" ago); `limit` must be 1 to `max_limit`.
/// Thread-safe; never throws but for memory.
std::string set_filter_term(JobFilter& filter, std::string_view name, std::string_view value, Micros now,
                            std::string_view shown_as, std::size_t max_limit);

}  // namespace jobtrail::view
