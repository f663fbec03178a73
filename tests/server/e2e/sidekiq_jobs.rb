# frozen_string_literal: true

# Sidekiq jobs of the end-to-end test: one enqueues a child, one fails once then succeeds, one dies.
require "sidekiq"
require_relative "../../../contrib/ruby/jobtrail_sidekiq/lib/jobtrail_sidekiq"

JobTrail::Sidekiq.install
# Debian's redis gem 4.8 warns about an API Sidekiq 6.4 still uses; not ours to fix.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
# Retries and scheduled jobs are picked up within a second, not Sidekiq's default 5-15 s.
Sidekiq.options[:poll_interval_average] = 1

class WelcomeJob
  include Sidekiq::Worker
  def perform(user_id)
    AuditJob.perform_async(user_id)
  end
end

class AuditJob
  include Sidekiq::Worker
  def perform(_user_id); end
end

class ChargeJob
  include Sidekiq::Worker
  sidekiq_options retry: 2
  sidekiq_retry_in { |_count, _error| 1 }
  def perform(_card)
    raise IOError, "payment gateway timed out" if Sidekiq.redis { |redis| redis.incr("attempts:#{jid}") } == 1
  end
end

class ExplodeJob
  include Sidekiq::Worker
  sidekiq_options retry: 0
  def perform
    raise ArgumentError, "this job always fails"
  end
end
