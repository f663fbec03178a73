#include "prepared_store.h"

#include <stdexcept>
#include <vector>

#include "jobtrail/store.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli_testing {
namespace {

Micros at(const std::string& iso_time) {
  const auto parsed = view::parse_time(iso_time, 0);
  if (!parsed) throw std::invalid_argument("bad fixture time " + iso_time);
  return *parsed;
}

/// What every event of one job says about it, as an instrumented worker would send.
struct JobFacts {
  std::string job_id;
  std::string job;
  std::string queue;
  std::string correlation_id;
  std::string parent_job_id;
  std::string idempotency_key;
  std::vector<std::string> entities;

  Event happened(State state, const std::string& when, std::int32_t attempt = 0, std::string worker = "",
                 ErrorInfo error = {}) const {
    Event event;
    event.job_id = job_id;
    event.state = state;
    event.at = at(when);
    event.job = job;
    event.queue = queue;
    event.correlation_id = correlation_id;
    event.parent_job_id = parent_job_id;
    event.idempotency_key = idempotency_key;
    event.attempt = attempt;
    event.worker = std::move(worker);
    event.error = std::move(error);
    event.entities = entities;
    return event;
  }
};

std::vector<Event> signup() {
  const std::string request = "req-signup-7f3a9c";
  const JobFacts create_user{"user-42-create", "CreateUserJob", "default", request, "", "", {"user:42"}};
  const JobFacts welcome_email{"welcome-email-42", "WelcomeEmailJob", "mailers", request,
                               "user-42-create", "welcome-email:user:42", {"user:42"}};
  const JobFacts audit_log{"audit-log-42", "AuditLogJob", "low", request, "user-42-create", "", {"user:42"}};
  const ErrorInfo smtp_timeout{"Net::ReadTimeout", "SMTP server smtp.example.com did not answer within 30s",
                               "app/mailers/welcome_mailer.rb:12:in `deliver'\n"
                               "app/jobs/welcome_email_job.rb:8:in `perform'\n"
                               "\tlib/worker/runner.rb:41:in `run'"};
  return {
      create_user.happened(State::enqueued, "2017-08-31T23:52:57.123Z"),
      create_user.happened(State::started, "2017-08-31T23:52:57.180Z", 1, "worker-a:4101"),
      welcome_email.happened(State::enqueued, "2017-08-31T23:52:57.390Z", 0, "worker-a:4101"),
      audit_log.happened(State::enqueued, "2017-08-31T23:52:57.401Z", 0, "worker-a:4101"),
      create_user.happened(State::succeeded, "2017-08-31T23:52:57.412Z", 1, "worker-a:4101"),
      welcome_email.happened(State::started, "2017-08-31T23:52:58.002Z", 1, "worker-b:5230"),
      welcome_email.happened(State::failed, "2017-08-31T23:53:28.010Z", 1, "worker-b:5230", smtp_timeout),
      welcome_email.happened(State::started, "2017-08-31T23:53:58.020Z", 2, "worker-a:4101"),
      welcome_email.happened(State::succeeded, "2017-08-31T23:53:58.871Z", 2, "worker-a:4101"),
  };
}

/// Two earlier welcome emails, so the class has a spread of timings and a failure rate.
std::vector<Event> earlier_signups() {
  const JobFacts welcome_43{"welcome-email-43", "WelcomeEmailJob", "mailers", "req-signup-0b41e2",
                            "", "welcome-email:user:43", {"user:43"}};
  const JobFacts welcome_44{"welcome-email-44", "WelcomeEmailJob", "mailers", "req-signup-c9d007",
                            "", "welcome-email:user:44", {"user:44"}};
  const ErrorInfo bounced{"Net::SMTPFatalError", "550 5.1.1 <bob@exampel.com>: Recipient address rejected", ""};
  return {
      welcome_43.happened(State::enqueued, "2017-08-30T14:10:00.000Z"),
      welcome_43.happened(State::started, "2017-08-30T14:10:00.200Z", 1, "worker-a:4101"),
      welcome_43.happened(State::succeeded, "2017-08-30T14:10:00.800Z", 1, "worker-a:4101"),
      welcome_44.happened(State::enqueued, "2017-08-30T18:45:00.000Z"),
      welcome_44.happened(State::started, "2017-08-30T18:45:01.500Z", 1, "worker-b:5230"),
      welcome_44.happened(State::failed, "2017-08-30T18:45:05.500Z", 1, "worker-b:5230", bounced),
  };
}

std::vector<Event> month_close() {
  const std::string request = "req-month-close-2017-08";
  const JobFacts invoice{"invoice-2017-08-acme", "InvoiceJob", "billing", request, "", "",
                         {"invoice:2017-08", "customer:acme"}};
  const JobFacts payment{"payment-2017-08-acme",           "ChargeCardJob", "billing", request, "invoice-2017-08-acme",
                         "charge:invoice:2017-08:acme", {"invoice:2017-08", "customer:acme"}};
  const JobFacts receipt{"receipt-email-2017-08-acme", "ReceiptEmailJob", "mailers", request,
                         "payment-2017-08-acme",       "",                {"customer:acme"}};
  const JobFacts pdf{"invoice-pdf-2017-08-acme", "RenderPdfJob", "default", request, "invoice-2017-08-acme", "",
                     {"invoice:2017-08"}};
  const JobFacts ledger{"ledger-sync-2017-08", "LedgerSyncJob", "billing", request, "month-close-scheduler", "",
                        {"invoice:2017-08"}};
  const ErrorInfo connection_reset{"Stripe::APIConnectionError",
                                   "Connection reset by peer while confirming charge ch_1A2b3C",
                                   "app/jobs/charge_card_job.rb:31:in `perform'"};
  const ErrorInfo ledger_down{"PG::ConnectionBad", "could not connect to server: Connection refused", ""};
  return {
      invoice.happened(State::enqueued, "2017-09-01T00:00:00.000Z"),
      invoice.happened(State::started, "2017-09-01T00:00:00.250Z", 1, "billing-1:77"),
      ledger.happened(State::enqueued, "2017-09-01T00:00:00.500Z"),
      ledger.happened(State::started, "2017-09-01T00:00:01.000Z", 1, "billing-3:90"),
      payment.happened(State::enqueued, "2017-09-01T00:00:03.600Z", 0, "billing-1:77"),
      pdf.happened(State::enqueued, "2017-09-01T00:00:03.700Z", 0, "billing-1:77"),
      invoice.happened(State::succeeded, "2017-09-01T00:00:03.750Z", 1, "billing-1:77"),
      payment.happened(State::started, "2017-09-01T00:00:03.900Z", 1, "billing-2:81"),
      pdf.happened(State::started, "2017-09-01T00:00:04.000Z", 1, "worker-c:999"),
      pdf.happened(State::succeeded, "2017-09-01T00:00:06.500Z", 1, "worker-c:999"),
      payment.happened(State::failed, "2017-09-01T00:00:13.900Z", 1, "billing-2:81", connection_reset),
      ledger.happened(State::failed, "2017-09-01T00:00:31.000Z", 1, "billing-3:90", ledger_down),
      payment.happened(State::started, "2017-09-01T00:01:03.950Z", 2, "billing-2:81"),
      payment.happened(State::succeeded, "2017-09-01T00:01:05.100Z", 2, "billing-2:81"),
      receipt.happened(State::enqueued, "2017-09-01T00:01:05.120Z", 0, "billing-2:81"),
      // The queue redelivered the payment after billing-2 lost its acknowledgement: the
      // customer is charged twice, and the store must flag it rather than drop it.
      payment.happened(State::started, "2017-09-01T00:01:05.300Z", 3, "billing-1:77"),
      receipt.happened(State::started, "2017-09-01T00:01:05.400Z", 1, "worker-a:4101"),
      payment.happened(State::succeeded, "2017-09-01T00:01:06.000Z", 3, "billing-1:77"),
      receipt.happened(State::succeeded, "2017-09-01T00:01:06.200Z", 1, "worker-a:4101"),
      ledger.happened(State::started, "2017-09-01T00:02:01.000Z", 2, "billing-3:90"),
      ledger.happened(State::failed, "2017-09-01T00:02:31.000Z", 2, "billing-3:90", ledger_down),
      ledger.happened(State::started, "2017-09-01T00:04:01.000Z", 3, "billing-3:90"),
      ledger.happened(State::dead, "2017-09-01T00:04:31.000Z", 3, "billing-3:90", ledger_down),
  };
}

std::vector<Event> stuck_and_cancelled() {
  const JobFacts nightly{"nightly-report-2017-08-31", "NightlyReportJob", "reports", "cron-nightly-2017-09-01",
                         "", "", {}};
  const JobFacts csv_export{"export-acme-91", "CsvExportJob", "low", "req-export-91", "", "", {"customer:acme"}};
  return {
      nightly.happened(State::enqueued, "2017-09-01T02:00:00.000Z"),
      nightly.happened(State::started, "2017-09-01T02:00:00.500Z", 1, "reports-1:3111"),
      nightly.happened(State::heartbeat, "2017-09-01T02:05:00.500Z", 1, "reports-1:3111"),
      csv_export.happened(State::enqueued, "2017-09-01T09:00:00.000Z"),
      csv_export.happened(State::cancelled, "2017-09-01T09:05:00.000Z", 0, "web-2:880"),
  };
}

}  // namespace

PreparedStore::PreparedStore() : path_(directory_.file("jobtrail.db")) {
  const auto store = open_store(path_);
  // One append per request, as a tracker's writer would batch them.
  for (const auto& batch : {earlier_signups(), signup(), month_close(), stuck_and_cancelled()}) store->append(batch);
}

}  // namespace jobtrail::cli_testing
