# frozen_string_literal: true

module JobTrail
  # One ticker thread per process that records a `heartbeat` for every running job.
  #
  # The default interval is 30 s ($JOBTRAIL_HEARTBEAT_INTERVAL, seconds), the same as the
  # Python clients': 120 times below the built-in stuck deadline (1 h), so a job is "stuck" only
  # after it missed over a hundred heartbeats, and still short enough for per-job deadlines of a
  # few minutes; it costs one small event per running job every 30 s. The beat comes from this
  # thread, not the job's, so a job busy in C code or sleeping still beats; what stops the beats
  # is the process stopping (killed, frozen, OOM) — exactly when the job is lost.
  #
  # Thread-safe. Fork-safe: a forked child starts with no jobs and a ticker of its own.
  class Heartbeats
    DEFAULT_INTERVAL_S = 30.0

    # A running job, its attempt and the fields each heartbeat carries.
    Running = Struct.new(:job_id, :attempt, :fields, :entities)

    def self.interval_from_env
      value = Float(ENV.fetch("JOBTRAIL_HEARTBEAT_INTERVAL", DEFAULT_INTERVAL_S))
      value.positive? ? value : DEFAULT_INTERVAL_S
    rescue ArgumentError, TypeError
      DEFAULT_INTERVAL_S
    end

    attr_reader :interval

    def initialize(interval: nil)
      @interval = interval || self.class.interval_from_env
      reset
    end

    # Starts beating for `running` (a Running) until `stop`.
    def start(running)
      reset if @pid != Process.pid
      @mutex.synchronize do
        @jobs[running.job_id] = running
        @thread ||= Thread.new { tick }.tap { |thread| thread.name = "jobtrail-heartbeat" }
      end
    end

    def stop(job_id)
      @mutex.synchronize { @jobs.delete(job_id) }
    end

    private

    def reset
      @pid = Process.pid
      @mutex = Mutex.new
      @jobs = {}
      @thread = nil
    end

    def tick
      loop do
        sleep(@interval)
        @mutex.synchronize { @jobs.values }.each do |job|
          JobTrail.client.record(job.job_id, "heartbeat", attempt: job.attempt,
                                                           entities: job.entities.empty? ? nil : job.entities.dup, **job.fields)
        end
      end
    rescue Exception # rubocop:disable Lint/RescueException -- a heartbeat must never take the process down
      nil
    end
  end
end
