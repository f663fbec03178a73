# frozen_string_literal: true

require "json"
require "socket"
require_relative "buffer"
require_relative "event"
require_relative "sender"

module JobTrail
  # Reports job events to `jobtrail serve` the way the C++ tracker records them:
  #
  #   1. `record` stamps the event with the time it happened (`at`, µs) — so a resend is
  #      recognised by serve and stored once — encodes it as a line of NDJSON (Encoder) and
  #      appends it to a bounded buffer (EventBuffer); it returns at once, and a full buffer
  #      drops and counts the event instead of blocking;
  #   2. one sender thread, started on first use, sleeps until there is an event, lingers
  #      (JOBTRAIL_LINGER, 50 ms) so that a batch gathers, and posts the buffer's chunks as
  #      they are over one keep-alive connection (HttpPoster);
  #   3. a serve that is down or restarting is retried with capped jittered backoff while the
  #      buffer holds (the batch in hand is kept, new events wait or are dropped when it fills);
  #   4. at exit (and on Sidekiq's :shutdown) the buffer is flushed with a bounded wait; what
  #      could not be sent by then is counted as dropped;
  #   5. a forked child gets a fresh buffer, sender thread and connection of its own.
  #
  # A durable event (`durable: true`, or JOBTRAIL_DURABLE=1 for all) is posted with
  # `?wait=commit`, and `record` waits (bounded) until serve has committed it.
  #
  # Never raises into the application after construction; problems are logged at most once a
  # minute, with how many were suppressed. Thread-safe.
  class Client
    BATCH_EVENTS = 1000
    # How long the sender sleeps with nothing to do; bounded so a stop request is seen.
    IDLE_WAIT_S = 1.0
    # How long a batch may gather before it is posted. Each post costs the process's threads
    # GVL time in Net::HTTP (measured: 360 µs a post on a loaded machine): with 5 ms a Sidekiq
    # worker draining 3,000 jobs/s made 80 posts a second of 73 events, 10 µs a job; with 50 ms
    # (the Python clients' default too) a post carries ten times more. Flushes, durable events
    # and a full batch do not wait for it.
    LINGER_S = 0.05
    FORK_HOOK = Process.respond_to?(:_fork)
    WARN_EVERY_S = 60.0
    # serve's limits in bytes of UTF-8 (docs/events.md): a longer field gets the event refused.
    MAX_NAME_BYTES = 200
    MAX_MESSAGE_BYTES = 8 * 1024
    MAX_BACKTRACE_BYTES = 64 * 1024

    # A durable event and the caller waiting for its commit.
    class Waiter
      def initialize
        @mutex = Mutex.new
        @done = ConditionVariable.new
        @result = nil
      end

      def finish(result)
        @mutex.synchronize do
          @result = result
          @done.broadcast
        end
      end

      def wait(timeout)
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
        @mutex.synchronize do
          while @result.nil?
            left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
            break if left <= 0

            @done.wait(@mutex, left)
          end
          @result == true
        end
      end
    end

    attr_reader :url, :capacity
    attr_writer :logger

    # url/token default to $JOBTRAIL_URL / $JOBTRAIL_TOKEN; capacity ($JOBTRAIL_BUFFER, events)
    # bounds the memory held while serve is away; exit_timeout ($JOBTRAIL_EXIT_TIMEOUT, s) is
    # the longest the process waits at exit for its events to go out.
    def initialize(url: nil, token: nil, capacity: nil, timeout: 5.0, exit_timeout: nil,
                   durable_timeout: 5.0, logger: nil)
      @url = (url || ENV["JOBTRAIL_URL"] || "http://127.0.0.1:8089").to_s
      @token = token.nil? ? ENV.fetch("JOBTRAIL_TOKEN", "") : token
      @timeout = timeout
      @capacity = Integer(capacity || ENV["JOBTRAIL_BUFFER"] || 100_000)
      @exit_timeout = Float(exit_timeout || ENV["JOBTRAIL_EXIT_TIMEOUT"] || 2.0)
      @durable_timeout = durable_timeout
      @durable_all = %w[1 true yes].include?(ENV.fetch("JOBTRAIL_DURABLE", "").downcase)
      @linger = linger_from_env
      @logger = logger
      @poster = HttpPoster.new(@url, token: @token, timeout: @timeout) # a bad URL fails here, at setup
      @warn_mutex = Mutex.new
      @last_warning = nil
      @suppressed = 0
      reset_state
      at_exit { close(@exit_timeout) if @pid == Process.pid }
    end

    # Records one event (1.); true if it was buffered (or, durable, committed). Never raises.
    # `fields`: attempt, job, queue, correlation_id, parent_job_id, entities, error, or any
    # other field serve reads (docs/events.md); nil ones are left out.
    def record(job_id, state, durable: false, **fields)
      job = Job.new(*Encoder::JOB_FIELDS.map { |name| name == :job_id ? job_id : fields.delete(name) })
      entities = fields.delete(:entities)
      error = fields.delete(:error)
      push(job, state, entities, error, fields.empty? ? nil : fields, durable || @durable_all)
    rescue StandardError => e
      warn_rate_limited("cannot record an event: #{e.class}: #{e.message}")
      false
    end

    # Records one event of `job` (a Job) — what the middlewares and heartbeats call once or
    # twice a job: no Hash, no keyword arguments, the job's shared fields encoded once.
    def record_job(job, state, error = nil, durable = false)
      entities = job.entities
      push(job, state, entities.nil? || entities.empty? ? nil : entities, error, nil, durable || @durable_all)
    end

    # Waits up to `timeout` seconds until every event recorded so far was sent (or given up).
    # True if the buffer drained.
    def flush(timeout = 2.0)
      return true if @pid != Process.pid # the parent's events are the parent's to send

      deadline = monotonic + timeout
      @state_mutex.synchronize do
        until @buffer.size.zero? && @in_flight.zero?
          left = deadline - monotonic
          return false if left <= 0 || !sender_alive?

          @buffer.hurry # again each round: events recorded meanwhile need not linger either
          @idle.wait(@state_mutex, [left, 0.05].min)
        end
      end
      true
    rescue StandardError
      false
    end

    # Flushes (bounded), then stops the sender; events still unsent count as dropped.
    def close(timeout = @exit_timeout)
      return if @pid != Process.pid

      flush(timeout)
      thread = @state_mutex.synchronize do
        @stopping = true
        @thread
      end
      @buffer.hurry
      # A sender still inside a post (serve away, a connect timeout) is not waited for: the
      # process is leaving, and its batch counts as dropped.
      thread.kill if thread && !thread.join(0.5)
      unsent = @in_flight
      while (chunk = @buffer.take)
        unsent += chunk.count
        chunk.waiters&.each { |waiter| waiter.finish(false) }
      end
      @in_flight = 0
      if unsent.positive?
        @buffer.count_dropped(unsent)
        warn_rate_limited("#{unsent} events were not sent to #{@poster.where} before exit", force: true)
      end
      @poster.close
    rescue StandardError
      nil
    end

    # What the client did so far: events sent, dropped (buffer full, or unsent at exit), resent
    # after a failed try, rejected by serve, and waiting in the buffer now.
    def stats
      { sent: @sent, dropped: @buffer.dropped, retried: @retried, rejected: @rejected,
        buffered: @buffer.size + @in_flight }
    end

    # Called in the child of a fork (Process._fork, Ruby >= 3.1); the next event starts over.
    def forked
      @forked = true
    end

    private

    def reset_state
      @pid = Process.pid
      @encoder = Encoder.new("#{Socket.gethostname}:#{@pid}")
      @forked = false
      @buffer = EventBuffer.new(@capacity, batch: BATCH_EVENTS, max_bytes: HttpPoster::MAX_BODY_BYTES)
      @state_mutex = Mutex.new
      @idle = ConditionVariable.new
      @thread = nil
      @stopping = false
      @in_flight = 0
      @sent = 0
      @retried = 0
      @rejected = 0
    end

    # 1. Stamp, encode, buffer. An event that cannot be JSON is the caller's problem, not
    # serve's: counted as rejected, never sent.
    def push(job, state, entities, error, others, durable)
      # Ruby 3.1 tells us about forks (see the bottom of this file); older ones pay a getpid.
      after_fork if @forked || (!FORK_HOOK && @pid != Process.pid)
      at = Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
      line = begin
        @encoder.line(job, state, at, entities, error, others)
      rescue StandardError => e
        @state_mutex.synchronize { @rejected += 1 }
        warn_rate_limited("cannot encode an event as JSON: #{e.class}: #{e.message}")
        return false
      end
      start_sender unless @thread
      return @buffer.push(line) unless durable

      waiter = Waiter.new
      @buffer.push(line, waiter) && waiter.wait(@durable_timeout)
    rescue StandardError => e
      warn_rate_limited("cannot record an event: #{e.class}: #{e.message}")
      false
    end

    # 5. The child of a fork: the parent's thread does not exist here and its socket is the
    # parent's. Start over (the parent's buffered events stay the parent's).
    def after_fork
      @poster.forget_after_fork
      reset_state
    end

    def start_sender
      @state_mutex.synchronize do
        return if @thread

        @thread = Thread.new { run_sender }
        @thread.name = "jobtrail-sender" if @thread.respond_to?(:name=)
      end
    end

    def sender_alive?
      @thread&.alive?
    end

    # 2. The sender thread: wait, linger, post each chunk; 3. retry while serve is away.
    def run_sender
      backoff = Backoff.new
      loop do
        @buffer.wait_for(1, IDLE_WAIT_S)
        @buffer.wait_for(BATCH_EVENTS, @linger) unless @stopping
        # Taken and counted in flight at once, so that flush never sees neither.
        chunk = @state_mutex.synchronize do
          taken = @buffer.take
          @in_flight = taken ? taken.count : 0
          taken
        end
        unless chunk
          break if @stopping

          next
        end
        stored = post_until_settled(chunk, backoff)
        chunk.waiters&.each { |waiter| waiter.finish(stored) }
        @state_mutex.synchronize do
          @in_flight = 0
          @idle.broadcast
        end
      end
    rescue Exception => e # rubocop:disable Lint/RescueException -- the sender must say why it stopped
      warn_rate_limited("the jobtrail sender stopped: #{e.class}: #{e.message}", force: true)
      @state_mutex.synchronize do
        @in_flight = 0
        @idle.broadcast
      end
    end

    # Posts one chunk until it is settled; true if serve stored all of it.
    def post_until_settled(chunk, backoff)
      durable = !chunk.waiters.nil?
      loop do
        outcome, message, rejected = @poster.post(chunk.body, chunk.count, durable: durable)
        case outcome
        when HttpPoster::SENT
          backoff.reset
          @sent += chunk.count # only this thread writes it
          return true
        when HttpPoster::REJECTED
          backoff.reset
          @sent += chunk.count - rejected
          @state_mutex.synchronize { @rejected += rejected } # recording threads count too
          warn_rate_limited(message)
          return false
        end
        warn_rate_limited(message)
        if @stopping # at exit: give up, and say so in the counts
          @buffer.count_dropped(chunk.count)
          return false
        end

        @retried += chunk.count
        sleep_unless_stopping(backoff.next_delay)
      end
    end

    def sleep_unless_stopping(seconds)
      deadline = monotonic + seconds
      while !@stopping && (left = deadline - monotonic).positive?
        sleep([left, 0.05].min)
      end
    end

    def linger_from_env
      value = Float(ENV.fetch("JOBTRAIL_LINGER", LINGER_S))
      value.negative? ? LINGER_S : value
    rescue ArgumentError, TypeError
      LINGER_S
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # At most one line a minute, with a count: a dead server must not flood the worker's log.
    def warn_rate_limited(message, force: false)
      suppressed = @warn_mutex.synchronize do
        now = monotonic
        if !force && @last_warning && now - @last_warning < WARN_EVERY_S
          @suppressed += 1
          return
        end
        @last_warning = now
        count = @suppressed
        @suppressed = 0
        count
      end
      line = suppressed.positive? ? "#{message} (and #{suppressed} more problems since the last warning)" : message
      line = "jobtrail: #{line}; stats #{stats}"
      logger = @logger || JobTrail.logger
      logger ? logger.warn(line) : Kernel.warn(line)
    rescue StandardError
      nil
    end
  end
end

# Ruby >= 3.1 calls Process._fork for every fork (fork, Process.fork, IO.popen("-")): tell the
# client in the child, so `record` need not compare pids on every call.
if JobTrail::Client::FORK_HOOK
  module JobTrail
    # Prepended to Process's singleton class. Thread-safe (runs in the forking thread).
    module ForkHook
      def _fork
        pid = super
        JobTrail.forked_in_child if pid.zero?
        pid
      end
    end
  end
  Process.singleton_class.prepend(JobTrail::ForkHook)
end
