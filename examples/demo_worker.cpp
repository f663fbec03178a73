// A small instrumented worker that replays the stories jobtrail was built for, into an
// embedded SQLite store:
//   - signups whose welcome-email job is lost (enqueued, never run), runs before the user's
//     transaction committed and fails once, runs twice, or dies;
//   - a month-close request that fans out into invoice, payment and receipt-email jobs, where
//     a payment times out, is retried, and a second payment job charges the same invoice again;
//   - a report job that has sat "running" for eight hours.
// Jobs run on a small in-process queue served by worker threads; every job is wrapped in a
// JobScope, and jobs enqueued from inside a job join its trace by themselves.
//
// Usage: demo_worker STORE   (e.g. sqlite:/tmp/jobtrail-demo.db)

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "jobtrail/context.h"
#include "jobtrail/job_scope.h"
#include "jobtrail/tracker.h"

using namespace jobtrail;
using namespace std::chrono_literals;

namespace {

// Stand-ins for the outside world of the stories: the signup transaction of user 43 commits
// only after its email job first ran, and the payment gateway times out once.
std::atomic<bool> user_43_committed{false};
std::atomic<bool> gateway_recovered{false};

/// A job as the queue carries it: what the enqueuer knew, plus the code to run.
struct QueuedJob {
  JobInfo info;
  std::function<void(JobScope&)> body;
};

/// The application's job queue (Resque, Sidekiq... in the talks). Thread-safe.
class JobQueue {
 public:
  explicit JobQueue(Tracker& tracker) : tracker_(tracker) {}

  /// Records the enqueue (inheriting the current request or job) and queues the job.
  void push(JobInfo info, std::function<void(JobScope&)> body) {
    Event event;
    event.job_id = info.job_id;
    event.job = info.job;
    event.queue = info.queue;
    event.attempt = info.attempt;
    event.idempotency_key = info.idempotency_key;
    event.entities = info.entities;
    tracker_.enqueue(event);
    // The enqueue filled in the trace; the job carries it in its payload, as a real queue would.
    info.correlation_id = current_correlation_id();
    if (info.parent_job_id.empty()) info.parent_job_id = current_job_id();
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back({std::move(info), std::move(body)});
      ++pending_;
    }
    ready_.notify_one();
  }

  /// Records an enqueue whose job never reaches a worker (the enqueue "timed out").
  void lose(const JobInfo& info) {
    Event event;
    event.job_id = info.job_id;
    event.job = info.job;
    event.queue = info.queue;
    event.entities = info.entities;
    tracker_.enqueue(event);
  }

  /// Serves jobs on `threads` worker threads until every queued job (and its children) ran.
  void drain(int threads) {
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i) workers.emplace_back([this] { serve(); });
    for (auto& worker : workers) worker.join();
  }

 private:
  void serve() {
    for (;;) {
      QueuedJob job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !jobs_.empty() || pending_ == 0; });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      run(job);
      {
        std::lock_guard lock(mutex_);
        --pending_;
      }
      ready_.notify_all();
    }
  }

  void run(QueuedJob& job) {
    try {
      JobScope scope(tracker_, job.info);
      scope.run([&] { job.body(scope); });
    } catch (const std::exception&) {
      // The scope recorded the failure. Like Sidekiq, retry up to three attempts.
      if (job.info.attempt < 3 && !job.info.job.empty()) {
        job.info.attempt += 1;
        CorrelationScope trace(job.info.correlation_id);
        auto info = job.info;
        push(std::move(info), std::move(job.body));
      }
    }
  }

  Tracker& tracker_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<QueuedJob> jobs_;
  int pending_ = 0;
};

void work_for(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

JobInfo job(std::string id, std::string name, std::string queue, std::vector<std::string> entities = {}) {
  JobInfo info;
  info.job_id = std::move(id);
  info.job = std::move(name);
  info.queue = std::move(queue);
  info.entities = std::move(entities);
  return info;
}

/// Signups: each request enqueues a welcome email that validates the account.
void signups(JobQueue& queue, Tracker& tracker) {
  for (int user = 41; user <= 45; ++user) {
    // Each web request gets its own correlation ID, carried into every job it causes.
    CorrelationScope request(new_correlation_id());
    auto tag = "user:" + std::to_string(user);
    auto email = job("welcome-email-" + std::to_string(user), "WelcomeEmailJob", "mailers", {tag});
    switch (user) {
      case 41:  // all is well
        queue.push(email, [](JobScope&) { work_for(30ms); });
        break;
      case 42:  // the enqueue timed out: the user exists but the job never ran
        queue.lose(email);
        break;
      case 43:  // the job ran before the signup transaction committed
        queue.push(email, [](JobScope&) {
          work_for(10ms);
          if (!user_43_committed.exchange(true)) {
            throw std::runtime_error("ActiveRecord::RecordNotFound: Couldn't find User with 'id'=43");
          }
        });
        break;
      case 44:  // failed half-way after sending, replayed from the failed queue: sent twice
        queue.push(email, [](JobScope& scope) {
          work_for(20ms);
          scope.tag("email:welcome-44");
        });
        break;
      case 45:  // the mail gateway rejects the address for good
        queue.push(email, [](JobScope& scope) {
          work_for(15ms);
          scope.give_up("MailGateway::InvalidRecipient", "550 5.1.1 mailbox unavailable: user45@example.invalid");
        });
        break;
    }
  }
  queue.drain(2);
  // The replay: an operator re-runs welcome-email-44 from the failed queue by hand, with the
  // same job ID; its first run had in fact gone through. jobtrail flags the second success.
  CorrelationScope replay(new_correlation_id());
  JobScope again(tracker, job("welcome-email-44", "WelcomeEmailJob", "mailers"));
  work_for(20ms);
  again.succeed();
}

/// The month close: one request fans out into an invoice per customer, each invoice into a
/// payment, each payment into a receipt email.
void month_close(JobQueue& queue) {
  // The request arrived with a W3C traceparent header: its trace ID becomes the correlation ID.
  auto trace_id = correlation_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CorrelationScope request(*trace_id);
  queue.push(job("close-2017-08", "MonthCloseJob", "billing", {"period:2017-08"}), [&queue](JobScope&) {
    for (int customer = 1; customer <= 3; ++customer) {
      auto c = std::to_string(customer);
      auto invoice = "invoice:2017-08-" + c;
      queue.push(job("invoice-2017-08-" + c, "InvoiceJob", "billing", {invoice, "customer:" + c}),
                 [&queue, c, invoice](JobScope&) {
                   work_for(25ms);
                   auto pay = [&queue, c, invoice](std::string payment_id) {
                     auto payment = job(payment_id, "PaymentJob", "payments", {invoice, "customer:" + c});
                     payment.idempotency_key = "charge-" + invoice;
                     queue.push(payment, [&queue, c](JobScope& scope) {
                       work_for(40ms);
                       if (scope.job_id() == "payment-2017-08-2" && !gateway_recovered.exchange(true)) {
                         scope.fail("Stripe::APIConnectionError", "Timed out connecting to api.stripe.com after 30s");
                         throw std::runtime_error("payment failed");
                       }
                       queue.push(job("receipt-" + scope.job_id(), "ReceiptEmailJob", "mailers", {"customer:" + c}),
                                  [](JobScope&) { work_for(10ms); });
                     });
                   };
                   pay("payment-2017-08-" + c);
                   // Customer 2's balance changed between jobs: a second payment job goes out for
                   // the same invoice, and the customer is charged twice.
                   if (c == "2") pay("payment-2017-08-2-rerun");
                 });
    }
  });
  queue.drain(2);
}

/// A nightly report that has been "running" since eight hours ago: its worker was killed.
void stuck_report(Tracker& tracker) {
  const Micros eight_hours_ago = now_micros() - 8LL * 3600 * 1000000 - 3 * 60 * 1000000;
  Event event;
  event.job_id = "nightly-report-2017-08-31";
  event.job = "NightlyReportJob";
  event.queue = "reports";
  event.correlation_id = new_correlation_id();
  event.state = State::enqueued;
  event.at = eight_hours_ago - 2 * 1000000;
  tracker.record(event);
  event.state = State::started;
  event.at = eight_hours_ago;
  event.attempt = 1;
  event.worker = "reports-1:2201";
  tracker.record_durable(event);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE   (e.g. sqlite:/tmp/jobtrail-demo.db)\n", argv[0]);
    return 2;
  }
  try {
    Tracker tracker(argv[1]);
    JobQueue queue(tracker);
    signups(queue, tracker);
    month_close(queue);
    stuck_report(tracker);
    if (!tracker.flush(10s)) {
      std::fprintf(stderr, "demo_worker: the store did not take every event in time\n");
      return 1;
    }
    auto counters = tracker.counters();
    std::printf("demo_worker: recorded %llu events into %s\n",
                static_cast<unsigned long long>(counters.stored), argv[1]);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "demo_worker: %s\n", error.what());
    return 1;
  }
}
