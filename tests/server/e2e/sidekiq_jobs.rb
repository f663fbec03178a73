# frozen_string_literal: true

# Sidekiq jobs of the end-to-end tests (e2e_workers.sh, e2e_sidekiq.sh): one enqueues a child,
# one fails once then succeeds, one dies, one runs long (heartbeating), one hangs until its
# worker is killed, one tags entities, one is scheduled, and a trivial one for bursts.
require "sidekiq"
require_relative "../../../contrib/ruby/jobtrail_sidekiq/lib/jobtrail_sidekiq"

JobTrail::Sidekiq.install
# Debian's redis gem 4.8 warns about an API Sidekiq 6.4 still uses; not ours to fix.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
# Retries and scheduled jobs are picked up within a second, not Sidekiq's default 5-15 s.
Sidekiq.options[:poll_interval_average] = 1

# The client's counts at exit, for the test to read ($JOBTRAIL_STATS_FILE). Registered before
# the client exists, so it runs after the client's own flush at exit.
if (stats_file = ENV["JOBTRAIL_STATS_FILE"])
  at_exit { File.write(stats_file, JSON.generate(JobTrail.client.stats)) }
end

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

# Runs longer than the test's stuck deadline; its heartbeats keep it from looking stuck.
class LongJob
  include Sidekiq::Worker
  sidekiq_options retry: false
  def perform(seconds)
    sleep(seconds)
  end
end

# Runs until the test kills its worker (SIGKILL): from then on no heartbeat, so it is stuck.
class HungJob
  include Sidekiq::Worker
  sidekiq_options retry: false, queue: "hung"
  def perform(seconds)
    sleep(seconds)
  end
end

# Its user comes from its arguments (declared, so the enqueue is tagged too); the invoice is
# tagged from inside the job.
class InvoiceJob
  include Sidekiq::Worker
  def self.jobtrail_entities(user_id, _month)
    ["user:#{user_id}"]
  end

  def perform(_user_id, month)
    JobTrail.tag("invoice:#{month}")
  end
end

# Scheduled with perform_in; it must stay in the request's trace when it runs.
class ReminderJob
  include Sidekiq::Worker
  def perform(_user_id); end
end

class NoopJob
  include Sidekiq::Worker
  def perform(_index); end
end
