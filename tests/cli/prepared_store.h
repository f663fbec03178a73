#pragma once
// A store holding the stories the golden tests tell, at fixed times.

#include <string>

#include "cli_runner.h"

namespace jobtrail::cli_testing {

/// The "current time" every golden test passes as --now, so ages of waiting and running
/// jobs do not depend on the clock.
inline const std::string golden_now = "2017-09-01T10:03:00Z";

/// A temporary SQLite store with:
///  - two earlier welcome emails: welcome-email-43 succeeded, welcome-email-44 failed;
///  - a signup (correlation req-signup-7f3a9c): user-42-create enqueues welcome-email-42,
///    which fails once with Net::ReadTimeout and then succeeds, and audit-log-42, which is
///    never picked up;
///  - a month close (req-month-close-2017-08): invoice-2017-08-acme fans out to
///    payment-2017-08-acme (fails, is retried, then succeeds twice: flagged) which enqueues
///    receipt-email-2017-08-acme, and to invoice-pdf-2017-08-acme; ledger-sync-2017-08,
///    whose parent was never recorded, dies after three attempts;
///  - nightly-report-2017-08-31, started at 02:00 and silent since a heartbeat at 02:05;
///  - export-acme-91, cancelled.
/// Entity tags: user:42 (43, 44), invoice:2017-08, customer:acme.
/// Not thread-safe; one per test.
class PreparedStore {
 public:
  PreparedStore();
  const std::string& path() const { return path_; }

 private:
  TempDir directory_;
  std::string path_;
};

}  // namespace jobtrail::cli_testing
