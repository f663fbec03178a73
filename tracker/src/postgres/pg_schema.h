#pragma once
// The PostgreSQL store's schema: every object lives in the schema "jobtrail" of the database the
// URL names, so the store can share a database with the application it watches (and SQL checks
// can join jobtrail.jobs with the application's tables, as they do on SQLite).

#include <string>

#include "jobtrail/drivers/pg_connection.h"

namespace jobtrail::pg {

/// Creates or upgrades the store to the latest schema version. Several processes may call it at
/// once (a fleet starting together): an advisory lock makes them take turns, and each migration
/// step runs once. Throws StoreError (not_a_store, schema_too_new, cannot_open, ...).
void migrate(Connection& connection, const std::string& where);

/// The store's schema version; throws not_found when the database holds no jobtrail store,
/// not_a_store when it holds something else called jobtrail, schema_too_new when newer.
int read_schema_version(Connection& connection, const std::string& where);

/// The key of the advisory locks jobtrail takes (pg_advisory_xact_lock(lock_space, ...)), so they
/// never collide with the application's own advisory locks on other keys.
inline constexpr int lock_space = 0x6a74;  // "jt"

}  // namespace jobtrail::pg
