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
  # What a job pays: `running` puts it in its own thread's variable and `stopped` clears it (no
  # lock, no shared table); the ticker finds the running jobs by looking at every thread once an
  # interval. A thread variable, not a fiber-local: a job inside a Fiber (an Enumerator) still
  # beats.
  #
  # Thread-safe. Fork-safe: a forked child has only the forking thread and starts a ticker of
  # its own on its next job.
  class Heartbeats
    DEFAULT_INTERVAL_S = 30.0
    RUNNING = :jobtrail_running_job

    def self.interval_from_env
      value = Float(ENV.fetch("JOBTRAIL_HEARTBEAT_INTERVAL", DEFAULT_INTERVAL_S))
      value.positive? ? value : DEFAULT_INTERVAL_S
    rescue ArgumentError, TypeError
      DEFAULT_INTERVAL_S
    end

    attr_reader :interval

    def initialize(interval: nil)
      @interval = interval || self.class.interval_from_env
      @mutex = Mutex.new
      @thread = nil
    end

    # Beats for `job` (a JobTrail::Job) until `stopped` is called on the same thread; returns
    # the job this thread ran before (a job run inline inside another), for `stopped`.
    def running(job)
      start_ticker unless @thread&.alive?
      thread = Thread.current
      outer = thread.thread_variable_get(RUNNING)
      thread.thread_variable_set(RUNNING, job)
      outer
    end

    def stopped(outer = nil)
      Thread.current.thread_variable_set(RUNNING, outer)
    end

    private

    def start_ticker
      @mutex.synchronize do
        @thread = Thread.new { tick }.tap { |thread| thread.name = "jobtrail-heartbeat" } unless @thread&.alive?
      end
    end

    def tick
      loop do
        sleep(@interval)
        client = JobTrail.client
        Thread.list.each do |thread|
          job = thread.thread_variable_get(RUNNING)
          client.record_job(job, "heartbeat") if job
        end
      end
    rescue Exception # rubocop:disable Lint/RescueException -- a heartbeat must never take the process down
      nil
    end
  end
end
