#pragma once
// The SQLite schema and its versioned migrations.

#include <string_view>
#include <vector>

#include "batch_planner.h"
#include "jobtrail/event.h"
#include "jobtrail/drivers/sqlite_db.h"

namespace jobtrail::sqlite {

/// Marks a SQLite file as a jobtrail store ("JOBT").
constexpr int application_id = 0x4A4F4254;

/// The newest schema version this build knows.
int latest_version() noexcept;

/// Brings a store opened for writing up to the latest schema, in one IMMEDIATE transaction
/// so that processes starting at once migrate it exactly once. Throws StoreError if the file
/// is another application's database or was written by a newer jobtrail.
void migrate(Connection& connection, const std::string& path);

/// Refuses, before anything is written, a file that is another application's database or a
/// store written by a newer jobtrail. An empty file passes.
void check_identity(Connection& connection, const std::string& path);

/// Checks a store opened read-only: ours, and at a version this build can read.
void check_readable(Connection& connection, const std::string& path);

/// The tally changes (BatchPlan::tally's shape) of counting, `sign` times each, the jobs that
/// `jobs_sql` selects as (job, first_at, state) in stored form: what version 5 adds for the
/// jobs already stored, and what a prune takes away.
std::vector<detail::TallyChange> tally_of(Connection& connection, Micros epoch, std::string_view jobs_sql, int sign);

/// The store's time origin: stored times are microseconds since it, which keeps them in
/// SQLite's 6-byte integers for four and a half years instead of 8 bytes.
Micros read_epoch(Connection& connection);

}  // namespace jobtrail::sqlite
