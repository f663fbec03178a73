#pragma once
/// \file
/// The filter of a job list and of `impact`, from the text a person types (`jobtrail ls
/// --since 24h`) or a client sends (`GET /v1/jobs?since=24h`): one reading, so the two always
/// agree, and the terms a list and `impact` share (state, job, since, until, limit) read alike.

#include <cstddef>
#include <string>
#include <string_view>

#include "jobtrail/store.h"

namespace jobtrail::view {

/// The terms set_filter_term knows, for help texts and messages.
inline constexpr const char* filter_term_names = "state, job, queue, entity, since, until, anomalies, limit, cursor";

/// Sets the term `name` (one of filter_term_names) of `filter` from `value`. Returns "" when
/// done, else why not, naming the term as the caller's user spells it (`shown_as`: "--since"
/// on the command line, "since" over HTTP) and quoting the value as given (escape it before
/// showing it). `now` anchors relative times ("24h" ago); `limit` must be 1 to `max_limit`.
/// Thread-safe; never throws but for memory.
std::string set_filter_term(JobFilter& filter, std::string_view name, std::string_view value, Micros now,
                            std::string_view shown_as, std::size_t max_limit);

/// The terms set_impact_term knows, for help texts and messages.
inline constexpr const char* impact_term_names = "job, state, type, since, until, limit, jobs_per_entity, max_jobs";

/// Whether `name` is one of impact_term_names.
bool is_impact_term(std::string_view name);

/// Most jobs max_jobs may name (0, every job, is always allowed).
inline constexpr std::size_t most_impact_jobs = 100'000'000;

/// How far back `impact` looks when no `since` is given (a duration before now). A bound, so
/// that the question asked without one ("what did the failures touch?") reads a day of the
/// index, never all of it.
inline constexpr const char* default_impact_since = "24h";

/// Most job IDs `impact` names per entity: the rest are a `jobtrail ls --entity` away.
inline constexpr std::size_t most_jobs_per_entity = 100;

/// The filter of `impact` before any term is set: since default_impact_since before `now`.
ImpactFilter impact_filter(Micros now);

/// Sets the term `name` (one of impact_term_names) of `filter` from `value`, as set_filter_term
/// does for a list (the same messages for the shared terms); `limit` (entities) must be 1 to
/// `max_limit`, jobs_per_entity 0 to most_jobs_per_entity, max_jobs 0 (all) to most_impact_jobs. Thread-safe; never throws but for memory.
std::string set_impact_term(ImpactFilter& filter, std::string_view name, std::string_view value, Micros now,
                            std::string_view shown_as, std::size_t max_limit);

/// "" when `filter` covers some time, else why not, naming since and until as the caller's user
/// spells them (a default since is said to be one).
std::string impact_window_problem(const ImpactFilter& filter, std::string_view since_shown,
                                  std::string_view until_shown);

}  // namespace jobtrail::view
