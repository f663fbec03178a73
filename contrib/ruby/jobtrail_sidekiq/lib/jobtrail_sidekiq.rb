# frozen_string_literal: true

# Reports Sidekiq jobs to `jobtrail serve`: enqueued, started, succeeded, failed (with the
# exception), the retry's enqueue, and dead once Sidekiq gives up. The correlation ID and the
# parent job travel in the job payload, so jobs enqueued by a job join the request's trace.
# Reporting never raises into the application: an unreachable server costs one warning a minute.

require "json"
require "net/http"
require "securerandom"
require "socket"
require "uri"

module JobTrail
  PAYLOAD_CORRELATION = "jobtrail_correlation_id"
  PAYLOAD_PARENT = "jobtrail_parent_job_id"
  TRACEPARENT = /\A[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\z/.freeze
  # The server's limits, in bytes of UTF-8: a longer field gets the whole event refused.
  MAX_CLASS_BYTES = 200
  MAX_MESSAGE_BYTES = 8 * 1024
  MAX_BACKTRACE_BYTES = 64 * 1024

  # Posts events to `jobtrail serve`. Thread-safe: a connection per call.
  class Client
    def initialize(url: ENV.fetch("JOBTRAIL_URL", "http://127.0.0.1:8089"), token: ENV["JOBTRAIL_TOKEN"],
                   timeout: 2.0, logger: nil)
      @uri = URI.join(url.end_with?("/") ? url : "#{url}/", "v1/events")
      @token = token
      @timeout = timeout
      @logger = logger
      @mutex = Mutex.new
      @last_warning = nil
      @suppressed = 0
      @down_until = 0.0 # after a failed connection, skip posts until then
    end

    # Records one event; true if the server took it.
    def record(job_id, state, **fields)
      event = { job_id: job_id.to_s, state: state, at: (Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)),
                worker: "#{Socket.gethostname}:#{Process.pid}" }
      fields.each { |key, value| event[key] = value unless value.nil? || value == "" }
      post([event])
    end

    def post(events)
      # An unreachable server must not add a connect timeout to every enqueue of a web request:
      # after one failure, events are dropped (and counted) for a few seconds.
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) < @down_until
        @mutex.synchronize { @suppressed += 1 }
        return false
      end
      body = encode(events)
      return false unless body

      request = Net::HTTP::Post.new(@uri, "Content-Type" => "application/x-ndjson")
      request["Authorization"] = "Bearer #{@token}" if @token && !@token.empty?
      request.body = body
      response = Net::HTTP.start(@uri.host, @uri.port, use_ssl: @uri.scheme == "https",
                                 open_timeout: @timeout, read_timeout: @timeout, write_timeout: @timeout) do |http|
        http.request(request)
      end
      return true if response.code.to_i.between?(200, 299)

      warn_once("jobtrail serve refused events: #{response.code} #{response.body.to_s[0, 300]}")
      false
    rescue StandardError => e # instrumentation must never break the job
      @down_until = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
      warn_once("cannot reach jobtrail serve at #{@uri}: #{e.class}: #{e.message}")
      false
    end

    private

    # NDJSON, or nil (with a warning) for events that cannot be JSON: their problem, not the
    # server's, so it must not mark the server as down. Strings are scrubbed to valid UTF-8 first:
    # an exception message in ASCII-8BIT or with stray bytes is common, and JSON refuses it.
    def encode(events)
      # Always with `at`: the server recognises a re-sent event by it (see docs/events.md).
      now = Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
      events.map do |event|
        event = event.merge(at: now) unless event.key?(:at) || event.key?("at")
        JSON.generate(JobTrail.scrub(event))
      end.join("\n") + "\n"
    rescue StandardError => e
      warn_once("cannot encode an event as JSON: #{e.class}: #{e.message}")
      nil
    end

    # At most one line a minute, with a count: a dead server must not flood the worker's log.
    def warn_once(message)
      suppressed = @mutex.synchronize do
        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        if @last_warning && now - @last_warning < 60
          @suppressed += 1
          return
        end
        @last_warning = now
        count = @suppressed
        @suppressed = 0
        count
      end
      line = suppressed.positive? ? "#{message} (#{suppressed} more events lost since the last warning)" : message
      (@logger || (defined?(::Sidekiq) ? ::Sidekiq.logger : nil))&.warn("jobtrail: #{line}") || warn("jobtrail: #{line}")
    end
  end

  class << self
    attr_writer :client

    def client
      @client ||= Client.new
    end

    def new_correlation_id
      SecureRandom.hex(16)
    end

    # `value` with every string in it made valid UTF-8 (bad bytes become U+FFFD).
    def scrub(value)
      case value
      when Hash then value.transform_values { |item| scrub(item) }
      when Array then value.map { |item| scrub(item) }
      when String then utf8(value)
      else value
      end
    end

    # The start of `text` in at most `limit` bytes of UTF-8, cut between characters.
    def utf8_head(text, limit)
      text = utf8(text)
      text.bytesize <= limit ? text : text.byteslice(0, limit).scrub("")
    end

    # The end of `text` in at most `limit` bytes of UTF-8, cut between characters.
    def utf8_tail(text, limit)
      text = utf8(text)
      text.bytesize <= limit ? text : text.byteslice(text.bytesize - limit, limit).scrub("")
    end

    private

    def utf8(text)
      text = text.to_s
      # Binary strings (from C extensions, sockets) are most often UTF-8 that was never labelled.
      text = text.dup.force_encoding(Encoding::UTF_8) if text.encoding == Encoding::BINARY
      text = text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace) unless text.encoding == Encoding::UTF_8
      text.valid_encoding? ? text : text.scrub
    end

    public

    # The correlation ID jobs enqueued on this thread will carry, or nil.
    def current_correlation_id
      Thread.current[:jobtrail_correlation_id]
    end

    def current_job_id
      Thread.current[:jobtrail_job_id]
    end

    # Jobs enqueued inside the block carry `correlation_id` (or a W3C traceparent's trace ID).
    def with_correlation(correlation_id = nil, traceparent: nil)
      correlation_id ||= traceparent.to_s.strip[TRACEPARENT, 1] if traceparent
      with_context(correlation_id || new_correlation_id, current_job_id) { yield current_correlation_id }
    end

    def with_context(correlation_id, job_id)
      previous = [Thread.current[:jobtrail_correlation_id], Thread.current[:jobtrail_job_id]]
      Thread.current[:jobtrail_correlation_id] = correlation_id
      Thread.current[:jobtrail_job_id] = job_id
      yield
    ensure
      Thread.current[:jobtrail_correlation_id], Thread.current[:jobtrail_job_id] = previous
    end
  end

  module Sidekiq
    def self.fields(job, queue)
      { job: job["wrapped"] || job["class"].to_s, queue: queue.to_s,
        correlation_id: job[PAYLOAD_CORRELATION], parent_job_id: job[PAYLOAD_PARENT] }
    end

    # The attempt a payload is on: Sidekiq sets retry_count to 0 after the first failure.
    def self.attempt(job)
      job["retry_count"].nil? ? 1 : job["retry_count"].to_i + 2
    end

    # Sidekiq client middleware: stamps the correlation ID and parent into the payload and
    # records the enqueue (and the enqueue of each retry, which Sidekiq pushes through here).
    class ClientMiddleware
      def call(_worker_class, job, queue, _redis_pool)
        first_push = !job.key?(PAYLOAD_CORRELATION)
        if first_push
          job[PAYLOAD_CORRELATION] = JobTrail.current_correlation_id || JobTrail.new_correlation_id
          parent = JobTrail.current_job_id
          job[PAYLOAD_PARENT] = parent if parent && parent != job["jid"]
        end
        result = yield
        # A scheduled job comes through twice (scheduled, then due): record the first push and
        # each retry, not the move from the schedule to the queue.
        if result && (first_push || job.key?("retry_count"))
          JobTrail.client.record(job["jid"], "enqueued", attempt: Sidekiq.attempt(job), **Sidekiq.fields(job, queue))
        end
        result
      end
    end

    # Sidekiq server middleware: started, then succeeded, or failed and (when Sidekiq will not
    # retry) dead. Jobs the job enqueues inherit its correlation ID with it as their parent.
    class ServerMiddleware
      def call(_worker, job, queue)
        attempt = Sidekiq.attempt(job)
        fields = Sidekiq.fields(job, queue)
        JobTrail.client.record(job["jid"], "started", attempt: attempt, **fields)
        JobTrail.with_context(job[PAYLOAD_CORRELATION] || JobTrail.new_correlation_id, job["jid"]) { yield }
        JobTrail.client.record(job["jid"], "succeeded", attempt: attempt, **fields)
      rescue Exception => e # rubocop:disable Lint/RescueException -- recorded, then re-raised
        error = { class: JobTrail.utf8_head(e.class.name, MAX_CLASS_BYTES),
                  message: JobTrail.utf8_head(e.message, MAX_MESSAGE_BYTES),
                  backtrace: JobTrail.utf8_head(Array(e.backtrace).first(50).join("\n"), MAX_BACKTRACE_BYTES) }
        JobTrail.client.record(job["jid"], "failed", attempt: attempt, error: error, **fields)
        JobTrail.client.record(job["jid"], "dead", attempt: attempt, **fields) unless retries_left?(job, attempt, e)
        raise
      end

      private

      # Sidekiq's own rule: retry while fewer than `retry` (true: max_retries, 25) retries ran.
      def retries_left?(job, attempt, error)
        return true if defined?(::Sidekiq::Shutdown) && error.is_a?(::Sidekiq::Shutdown) # pushed back, not failed for good

        max = case job["retry"]
              when true, nil then ::Sidekiq.options.fetch(:max_retries, 25)
              when false then 0
              else job["retry"].to_i
              end
        attempt - 1 < max
      end
    end

    # Adds both middlewares; call once at boot (an initializer, or the file given to `sidekiq -r`).
    def self.install
      ::Sidekiq.configure_client do |config|
        config.client_middleware { |chain| chain.add ClientMiddleware }
      end
      ::Sidekiq.configure_server do |config|
        config.client_middleware { |chain| chain.add ClientMiddleware }
        config.server_middleware { |chain| chain.add ServerMiddleware }
      end
    end
  end
end
