# frozen_string_literal: true

# Reports Sidekiq jobs to `jobtrail serve` — enqueued (and scheduled), started, heartbeats while
# running, succeeded, failed (with the exception), each retry's enqueue, dead once Sidekiq gives
# up, and a job killed at shutdown — through a buffered client that costs the job microseconds
# (jobtrail/client.rb). The correlation ID, the parent job and the job's entities travel in the
# job payload, so jobs enqueued by a job join the request's trace. Reporting never raises into
# the application. See README.md beside this folder.

require "securerandom"
require "socket"
require_relative "jobtrail/client"
require_relative "jobtrail/event"
require_relative "jobtrail/heartbeats"

module JobTrail
  PAYLOAD_CORRELATION = "jobtrail_correlation_id"
  PAYLOAD_PARENT = "jobtrail_parent_job_id"
  PAYLOAD_ENTITIES = "jobtrail_entities"
  TRACEPARENT = /\A[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\z/.freeze
  # serve's rule (docs/events.md): "type:id", the type in a-z 0-9 _ . -, at most 200 bytes.
  ENTITY = /\A[a-z0-9_.-]+:.+\z/m.freeze
  MAX_ENTITIES = 64
  # The fiber-local Job whose correlation ID and ID the jobs enqueued here carry: the running
  # job, or what `with_correlation` set.
  CONTEXT = :jobtrail_context

  class << self
    attr_writer :client, :heartbeats, :logger

    # The process's client, made from the environment on first use.
    def client
      @client ||= Client.new
    end

    def heartbeats
      @heartbeats ||= Heartbeats.new
    end

    # In the child of a fork: the parent's sender thread and connection are not ours.
    def forked_in_child
      @client&.forked
    end

    # Where problems are reported (at most once a minute): the logger you set, else Sidekiq's.
    def logger
      @logger || (defined?(::Sidekiq) && ::Sidekiq.respond_to?(:logger) ? ::Sidekiq.logger : nil)
    end

    def new_correlation_id
      SecureRandom.hex(16)
    end

    # Tags the running job with business objects ("user:42", "invoice:2017-08"), so an
    # `entity:` check's bad rows link to it. Returns false outside a job or for a malformed tag
    # (which serve would refuse), never raises.
    def tag(*entities)
      job = running_job
      return false unless job

      tags = (job.entities ||= [])
      valid = entities.flatten.map(&:to_s).select { |entity| valid_entity?(entity) }
      valid.each { |entity| tags << entity unless tags.size >= MAX_ENTITIES || tags.include?(entity) }
      valid.size == entities.flatten.size
    rescue StandardError
      false
    end

    def valid_entity?(entity)
      entity.bytesize <= 200 && entity.match?(ENTITY)
    end

    # The correlation ID jobs enqueued on this thread will carry, or nil.
    def current_correlation_id
      Thread.current[CONTEXT]&.correlation_id
    end

    def current_job_id
      Thread.current[CONTEXT]&.job_id
    end

    # The job this thread runs (a Job), or nil.
    def running_job
      Thread.current.thread_variable_get(Heartbeats::RUNNING)
    end

    # Jobs enqueued inside the block carry `correlation_id` (or a W3C traceparent's trace ID).
    def with_correlation(correlation_id = nil, traceparent: nil)
      correlation_id ||= traceparent.to_s.strip[TRACEPARENT, 1] if traceparent
      with_context(Job.new(current_job_id, nil, nil, nil, correlation_id || new_correlation_id)) do
        yield current_correlation_id
      end
    end

    # Jobs enqueued inside the block carry `job`'s correlation ID, and its ID as their parent.
    def with_context(job)
      thread = Thread.current
      previous = thread[CONTEXT]
      thread[CONTEXT] = job
      yield
    ensure
      thread[CONTEXT] = previous
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

    # What ends a cut text, then the length sent and " bytes]": truncation_marker in event.h.
    TRUNCATION_MARKER = "\u2026[truncated from "

    # `text` as serve stores it: whole when it fits in `limit` bytes of UTF-8, else its start, cut
    # between characters, and "…[truncated from N bytes]" (N: the bytes it had), the two within
    # `limit`. The C++ rule truncate_free_text() (tracker/src/event.cpp), byte for byte: the client
    # cuts so that one huge text cannot make a batch too large for serve or fill the buffer, and
    # what is stored is the same whichever way it came.
    def cut_free_text(text, limit)
      text = utf8(text)
      return text if text.bytesize <= limit
      tail = "#{TRUNCATION_MARKER}#{text.bytesize} bytes]"
      finish = [limit - tail.bytesize, 0].max
      # Back to the start of a character (at most three continuation bytes).
      3.times { finish -= 1 if finish.positive? && (text.getbyte(finish) & 0xC0) == 0x80 }
      text.byteslice(0, finish) + tail
    end

    # An exception as the event's `error`, each text cut by serve's rule (cut_free_text).
    def error_of(exception, message: nil)
      { class: cut_free_text(exception.class.name.to_s, Client::MAX_NAME_BYTES),
        message: cut_free_text(message || exception.message.to_s, Client::MAX_MESSAGE_BYTES),
        backtrace: cut_free_text(Array(exception.backtrace).first(50).join("\n"), Client::MAX_BACKTRACE_BYTES) }
    end

    private

    def utf8(text)
      text = text.to_s
      # Binary strings (from C extensions, sockets) are most often UTF-8 that was never labelled.
      text = text.dup.force_encoding(Encoding::UTF_8) if text.encoding == Encoding::BINARY
      text = text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace) unless text.encoding == Encoding::UTF_8
      text.valid_encoding? ? text : text.scrub
    end
  end

  module Sidekiq
    SHUTDOWN_MESSAGE = "killed at shutdown: the job outlived Sidekiq's shutdown timeout (-t); " \
                       "Sidekiq pushed it back to its queue, to run again"

    # The Job a payload describes (`entities` a copy: `JobTrail.tag` appends to it).
    def self.job_of(payload, queue, attempt = attempt(payload))
      entities = payload[PAYLOAD_ENTITIES]
      Job.new(payload["jid"], attempt, (payload["wrapped"] || payload["class"]).to_s, queue.to_s,
              payload[PAYLOAD_CORRELATION], payload[PAYLOAD_PARENT],
              entities.is_a?(Array) && !entities.empty? ? entities.dup : nil)
    end

    # The attempt a payload is on: Sidekiq sets retry_count to 0 after the first failure.
    def self.attempt(payload)
      payload["retry_count"].nil? ? 1 : payload["retry_count"].to_i + 2
    end

    # The entities a job class declares for its arguments: `def self.jobtrail_entities(*args)`
    # on the job class, returning strings such as "user:42".
    def self.declared_entities(worker_class, args)
      klass = worker_class.is_a?(Class) ? worker_class : Object.const_get(worker_class.to_s)
      return [] unless klass.respond_to?(:jobtrail_entities)

      Array(klass.jobtrail_entities(*Array(args))).map(&:to_s).select { |entity| JobTrail.valid_entity?(entity) }
                                                  .first(MAX_ENTITIES)
    rescue StandardError, ScriptError
      []
    end

    def self.shutdown?(error)
      return false unless defined?(::Sidekiq::Shutdown)

      seen = 0
      while error && seen < 10
        return true if error.is_a?(::Sidekiq::Shutdown)

        error = error.cause
        seen += 1
      end
      false
    end

    # Sidekiq client middleware: stamps the correlation ID, parent and declared entities into the
    # payload and records the enqueue — a job scheduled with perform_in/perform_at when it is
    # scheduled, and each retry when Sidekiq pushes it back (the move of a scheduled job from the
    # schedule to its queue is not a new enqueue: the payload already carries its trace).
    class ClientMiddleware
      def call(worker_class, job, queue, _redis_pool)
        first_push = !job.key?(PAYLOAD_CORRELATION)
        if first_push
          job[PAYLOAD_CORRELATION] = JobTrail.current_correlation_id || JobTrail.new_correlation_id
          parent = JobTrail.current_job_id
          job[PAYLOAD_PARENT] = parent if parent && parent != job["jid"]
          entities = Sidekiq.declared_entities(worker_class, job["args"])
          job[PAYLOAD_ENTITIES] = entities unless entities.empty?
        end
        result = yield
        JobTrail.client.record_job(Sidekiq.job_of(job, queue), "enqueued") if result && (first_push || job.key?("retry_count"))
        result
      end
    end

    # Sidekiq server middleware: started, heartbeats while the job runs, then succeeded, or
    # failed (dead comes from Sidekiq's death handlers, once Sidekiq gives up). Jobs the job
    # enqueues inherit its correlation ID with it as their parent.
    #
    # What a job pays, in steps: one Job (the fields all its events share, encoded once);
    # `started` and the end, each a line of JSON appended to the buffer; the job in its
    # thread's variable for the heartbeats; the fiber-local context for the jobs it enqueues.
    # No lock but the buffer's, no Hash.
    class ServerMiddleware
      def call(_worker, payload, queue)
        job = Sidekiq.job_of(payload, queue)
        job.correlation_id ||= JobTrail.new_correlation_id # enqueued by an untracked client
        durable = payload["jobtrail_durable"] == true
        client = JobTrail.client
        heartbeats = JobTrail.heartbeats
        client.record_job(job, "started")
        outer = heartbeats.running(job)
        beating = true
        JobTrail.with_context(job) { yield }
        client.record_job(job, "succeeded", nil, durable)
      rescue Exception => e # rubocop:disable Lint/RescueException -- recorded, then re-raised
        if job
          error = Sidekiq.shutdown?(e) ? JobTrail.error_of(e, message: SHUTDOWN_MESSAGE) : JobTrail.error_of(e)
          JobTrail.client.record_job(job, "failed", error, durable)
        end
        raise
      ensure
        heartbeats.stopped(outer) if beating
      end
    end

    # Sidekiq calls its death handlers once it gives up on a job: retries exhausted (after the
    # class's sidekiq_retries_exhausted block) or `retry: false`.
    DEATH_HANDLER = lambda do |payload, exception|
      attempt = payload["retry_count"].nil? ? 1 : payload["retry_count"].to_i + 1
      error = exception ? JobTrail.error_of(exception) : nil
      JobTrail.client.record_job(job_of(payload, payload["queue"], attempt), "dead", error,
                                 payload["jobtrail_durable"] == true)
    end

    # Adds both middlewares, the death handler and the flush at shutdown; call once at boot (an
    # initializer, or the file given to `sidekiq -r`).
    def self.install
      ::Sidekiq.configure_client do |config|
        config.client_middleware { |chain| chain.add ClientMiddleware }
      end
      ::Sidekiq.configure_server do |config|
        config.client_middleware { |chain| chain.add ClientMiddleware }
        config.server_middleware { |chain| chain.add ServerMiddleware }
        config.death_handlers << DEATH_HANDLER unless config.death_handlers.include?(DEATH_HANDLER)
        # :shutdown fires before the busy jobs are given their last seconds: send what is
        # buffered now; what they record after (a job killed at shutdown) goes out at exit.
        config.on(:shutdown) { JobTrail.client.flush(2.0) }
      end
    end
  end
end

# The name the issue and some docs use.
JobtrailSidekiq = JobTrail unless defined?(JobtrailSidekiq)
