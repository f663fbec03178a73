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
require_relative "jobtrail/heartbeats"

module JobTrail
  PAYLOAD_CORRELATION = "jobtrail_correlation_id"
  PAYLOAD_PARENT = "jobtrail_parent_job_id"
  PAYLOAD_ENTITIES = "jobtrail_entities"
  TRACEPARENT = /\A[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\z/.freeze
  # serve's rule (docs/events.md): "type:id", the type in a-z 0-9 _ . -, at most 200 bytes.
  ENTITY = /\A[a-z0-9_.-]+:.+\z/m.freeze
  MAX_ENTITIES = 64

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
      tags = Thread.current[:jobtrail_entities]
      return false unless tags

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

    # `entities`: the running job's tags (an Array that `tag` appends to), or nil outside a job.
    def with_context(correlation_id, job_id, entities = nil)
      thread = Thread.current
      previous_correlation = thread[:jobtrail_correlation_id]
      previous_job = thread[:jobtrail_job_id]
      previous_entities = thread[:jobtrail_entities]
      thread[:jobtrail_correlation_id] = correlation_id
      thread[:jobtrail_job_id] = job_id
      thread[:jobtrail_entities] = entities
      yield
    ensure
      thread[:jobtrail_correlation_id] = previous_correlation
      thread[:jobtrail_job_id] = previous_job
      thread[:jobtrail_entities] = previous_entities
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

    # An exception as the event's `error`, within serve's limits.
    def error_of(exception, message: nil)
      { class: utf8_head(exception.class.name.to_s, Client::MAX_NAME_BYTES),
        message: utf8_head(message || exception.message.to_s, Client::MAX_MESSAGE_BYTES),
        backtrace: utf8_head(Array(exception.backtrace).first(50).join("\n"), Client::MAX_BACKTRACE_BYTES) }
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

    def self.fields(job, queue)
      { job: (job["wrapped"] || job["class"]).to_s, queue: queue.to_s,
        correlation_id: job[PAYLOAD_CORRELATION], parent_job_id: job[PAYLOAD_PARENT] }
    end

    # The attempt a payload is on: Sidekiq sets retry_count to 0 after the first failure.
    def self.attempt(job)
      job["retry_count"].nil? ? 1 : job["retry_count"].to_i + 2
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

    # A copy of the tags for an event, or nil (no field) when there are none.
    def self.present(entities)
      entities.nil? || entities.empty? ? nil : entities.dup
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
        if result && (first_push || job.key?("retry_count"))
          JobTrail.client.record(job["jid"], "enqueued", attempt: Sidekiq.attempt(job), entities: job[PAYLOAD_ENTITIES],
                                                         **Sidekiq.fields(job, queue))
        end
        result
      end
    end

    # Sidekiq server middleware: started, heartbeats while the job runs, then succeeded, or
    # failed (dead comes from Sidekiq's death handlers, once Sidekiq gives up). Jobs the job
    # enqueues inherit its correlation ID with it as their parent.
    class ServerMiddleware
      def call(_worker, job, queue)
        attempt = Sidekiq.attempt(job)
        fields = Sidekiq.fields(job, queue)
        durable = job["jobtrail_durable"] == true
        entities = Array(job[PAYLOAD_ENTITIES]).dup # `JobTrail.tag` appends here
        jid = job["jid"]
        JobTrail.client.record(jid, "started", attempt: attempt, entities: Sidekiq.present(entities), **fields)
        JobTrail.heartbeats.start(Heartbeats::Running.new(jid, attempt, fields, entities))
        JobTrail.with_context(job[PAYLOAD_CORRELATION] || JobTrail.new_correlation_id, jid, entities) { yield }
        JobTrail.client.record(jid, "succeeded", durable: durable, attempt: attempt, entities: Sidekiq.present(entities),
                                                 **fields)
      rescue Exception => e # rubocop:disable Lint/RescueException -- recorded, then re-raised
        error = Sidekiq.shutdown?(e) ? JobTrail.error_of(e, message: SHUTDOWN_MESSAGE) : JobTrail.error_of(e)
        JobTrail.client.record(jid, "failed", durable: durable, attempt: attempt, error: error,
                                              entities: Sidekiq.present(entities), **(fields || {}))
        raise
      ensure
        JobTrail.heartbeats.stop(jid)
      end
    end

    # Sidekiq calls its death handlers once it gives up on a job: retries exhausted (after the
    # class's sidekiq_retries_exhausted block) or `retry: false`.
    DEATH_HANDLER = lambda do |job, exception|
      attempt = job["retry_count"].nil? ? 1 : job["retry_count"].to_i + 1
      error = exception ? JobTrail.error_of(exception) : nil
      JobTrail.client.record(job["jid"], "dead", durable: job["jobtrail_durable"] == true, attempt: attempt, error: error,
                                                 entities: job[PAYLOAD_ENTITIES], **fields(job, job["queue"]))
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
