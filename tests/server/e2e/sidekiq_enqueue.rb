# frozen_string_literal: true

# The web request: enqueue under the request's correlation ID.
#   ruby sidekiq_enqueue.rb CORRELATION_ID            the jobs e2e_workers.sh expects
#   ruby sidekiq_enqueue.rb CORRELATION_ID SCENARIO   e2e_sidekiq.sh's: lifecycle | hung | burst N
# With $JOBTRAIL_STATS_FILE the client's counts are written there at exit.
require_relative "sidekiq_jobs"

correlation_id = ARGV.fetch(0)
case ARGV[1]
when nil
  JobTrail.with_correlation(correlation_id) do
    WelcomeJob.perform_async(42)
    ChargeJob.perform_async("4242")
    ExplodeJob.perform_async
  end
when "lifecycle"
  # A W3C traceparent, as a web framework's tracing would pass it on.
  JobTrail.with_correlation(traceparent: "00-#{correlation_id}-00f067aa0ba902b7-01") do
    WelcomeJob.perform_async(42)
    ChargeJob.perform_async("4242")
    ExplodeJob.perform_async
    InvoiceJob.perform_async(7, "2026-11")
    ReminderJob.perform_in(2, 42)
    LongJob.perform_async(Float(ENV.fetch("E2E_LONG_JOB_S", "5")))
  end
when "hung"
  JobTrail.with_correlation(correlation_id) { HungJob.perform_async(600) }
when "burst"
  # Many trivial jobs over a few seconds, then the client's counts on stdout.
  count = Integer(ARGV.fetch(2))
  JobTrail.with_correlation(correlation_id) do
    LongJob.perform_async(4) # running in the worker, heartbeating, while serve is away
    count.times do |index|
      NoopJob.set(jid: format("burst-%04d", index)).perform_async(index) # rubocop:disable Style/FormatStringToken
      sleep 0.02
    end
  end
else
  abort "unknown scenario #{ARGV[1].inspect} (lifecycle, hung, burst N)"
end
