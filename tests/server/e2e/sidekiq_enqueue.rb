# frozen_string_literal: true

# The web request: enqueue under the request's correlation ID. ARGV[0] is the correlation ID.
require_relative "sidekiq_jobs"

JobTrail.with_correlation(ARGV.fetch(0)) do
  WelcomeJob.perform_async(42)
  ChargeJob.perform_async("4242")
  ExplodeJob.perform_async
end
