# frozen_string_literal: true

require "json"
require "socket"
require_relative "buffer"
require_relative "sender"

module JobTrail
  # Reports job events to `jobtrail serve` the way the C++ tracker records them:
  #
  #   1. `record` stamps the event with the time it happened (`at`, µs) — so a resend is
  #      recognised by serve and stored once — and puts it in a bounded buffer; it returns at
  #      once, and a full buffer drops and counts the event instead of blocking;
  #   2. one sender thread, started on first use, takes batches from the buffer, encodes them
  #      as NDJSON and posts them over one keep-alive connection (HttpPoster);
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
    LINGER_S = 0.005
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
    DurableEvent = Struct.new(:event, :waiter)

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
      @logger = logger
      @poster = HttpPoster.new(@url, token: @token, timeout: @timeout) # a bad URL fails here, at setup
      @warn_mutex = Mutex.new
      @last_warning = nil
      @suppressed = 0
      reset_state
      at_exit { close(@exit_timeout) if @pid == Process.pid }
    end

    # Records one event (1.); true if it was buffered (or, durable, committed). Never raises.
    # Only the stamp and an append happen here; building the event, dropping nil fields and
    # encoding are the sender's work (a Hash of more than 8 keys costs a rebuild in Ruby 3.1;
    # measured: 27 µs a record when this built the event, on a loaded machine).
    def record(job_id, state, durable: false, **fields)
      push([job_id, state, Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond), fields],
           durable || @durable_all)
    rescue StandardError => e
      warn_rate_limited("cannot record an event: #{e.class}: #{e.message}")
      false
    end

    # Waits up to `timeout` seconds until every event recorded so far was sent (or given up).
    # True if the buffer drained.
    def flush(timeout = 2.0)
      return true if @pid != Process.pid # the parent's events are the parent's to send

      deadline = monotonic + timeout
      @buffer.wake
      @state_mutex.synchronize do
        until @buffer.size.zero? && @in_flight.zero?
          left = deadline - monotonic
          return false if left <= 0 || !sender_alive?

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
      @buffer.wake
      # A sender still inside a post (serve away, a connect timeout) is not waited for: the
      # process is leaving, and its batch counts as dropped.
      thread.kill if thread && !thread.join(0.5)
      unsent = @buffer.take(@capacity, 0).size + @in_flight
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
      @worker = "#{Socket.gethostname}:#{@pid}"
      @forked = false
      @buffer = EventBuffer.new(@capacity)
      @state_mutex = Mutex.new
      @idle = ConditionVariable.new
      @thread = nil
      @stopping = false
      @in_flight = 0
      @sent = 0
      @retried = 0
      @rejected = 0
    end

    def push(event, durable)
      # Ruby 3.1 tells us about forks (see the bottom of this file); older ones pay a getpid.
      after_fork if @forked || (!FORK_HOOK && @pid != Process.pid)
      start_sender unless @thread
      return @buffer.push(event) unless durable

      waiter = Waiter.new
      return false unless @buffer.push(DurableEvent.new(event, waiter))

      waiter.wait(@durable_timeout)
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

    # 2. The sender thread: batch, encode, post; 3. retry while serve is away.
    def run_sender
      backoff = Backoff.new
      loop do
        entries = @buffer.take(BATCH_EVENTS, IDLE_WAIT_S)
        if entries.empty?
          break if @stopping

          next
        end
        @state_mutex.synchronize { @in_flight = entries.size }
        durable, plain = entries.partition { |entry| entry.is_a?(DurableEvent) }
        deliver(plain, false, backoff) unless plain.empty?
        unless durable.empty?
          committed = deliver(durable.map(&:event), true, backoff)
          durable.each { |entry| entry.waiter.finish(committed) }
        end
        @state_mutex.synchronize do
          @in_flight = 0
          @idle.broadcast
        end
        # A short batch: linger a moment so the next post carries more (each post costs the
        # process's threads GVL time in Net::HTTP; fewer, larger ones cost the jobs less).
        sleep(LINGER_S) if entries.size < BATCH_EVENTS && !@stopping
      end
    rescue Exception => e # rubocop:disable Lint/RescueException -- the sender must say why it stopped
      warn_rate_limited("the jobtrail sender stopped: #{e.class}: #{e.message}", force: true)
      @state_mutex.synchronize do
        @in_flight = 0
        @idle.broadcast
      end
    end

    # Posts `events` in bodies under the size limit until each is settled; true if all were stored.
    def deliver(events, durable, backoff)
      rejected_before = @rejected
      bodies = encode(events)
      stored = @rejected == rejected_before # an event that cannot be JSON was not stored either
      bodies.each do |lines|
        stored = false unless post_until_settled(lines, durable, backoff)
      end
      stored
    end

    def post_until_settled(lines, durable, backoff)
      loop do
        outcome, message, rejected = @poster.post(lines, durable: durable)
        case outcome
        when HttpPoster::SENT
          backoff.reset
          @sent += lines.size
          return true
        when HttpPoster::REJECTED
          backoff.reset
          @rejected += rejected
          @sent += lines.size - rejected
          warn_rate_limited(message)
          return false
        end
        warn_rate_limited(message)
        if @stopping # at exit: give up, and say so in the counts
          @buffer.count_dropped(lines.size)
          return false
        end

        @retried += lines.size
        sleep_unless_stopping(backoff.next_delay)
      end
    end

    def sleep_unless_stopping(seconds)
      deadline = monotonic + seconds
      while !@stopping && (left = deadline - monotonic).positive?
        sleep([left, 0.05].min)
      end
    end

    # NDJSON lines, cut into bodies of at most MAX_BODY_BYTES. An event that cannot be JSON is
    # the caller's problem, not serve's: counted as rejected, never retried.
    def encode(events)
      bodies = [[]]
      bytes = 0
      events.each do |event|
        event = event_of(event)
        line = begin
          encode_line(event)
        rescue StandardError => e
          @rejected += 1
          warn_rate_limited("cannot encode an event as JSON: #{e.class}: #{e.message}")
          next
        end
        if bytes + line.bytesize > HttpPoster::MAX_BODY_BYTES && !bodies.last.empty?
          bodies << []
          bytes = 0
        end
        bodies.last << line
        bytes += line.bytesize
      end
      bodies.reject(&:empty?)
    end

    # The event `record` queued as [job_id, state, at, fields], as serve reads it.
    def event_of(recorded)
      job_id, state, at, fields = recorded
      event = { job_id: job_id.to_s, state: state.to_s, at: at, worker: @worker }
      fields.each { |key, value| event[key] = value unless value.nil? } # serve reads null as absent
      event
    end

    # Most events are valid UTF-8 already: scrub only those JSON refuses.
    def encode_line(event)
      JSON.generate(event) << "\n"
    rescue JSON::GeneratorError, EncodingError
      JSON.generate(JobTrail.scrub(event)) << "\n"
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
