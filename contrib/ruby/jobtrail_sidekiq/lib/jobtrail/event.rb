# frozen_string_literal: true

require "json"

module JobTrail
  # What the events of one job attempt share: its ID, attempt, class, queue, correlation ID and
  # parent, and the entities tagged so far. The server middleware makes one per attempt: it is
  # the running job of its thread (what `JobTrail.tag` appends to, what the heartbeat ticker
  # reads). `json` is the Encoder's: those shared fields' JSON, written once for all the
  # attempt's events.
  #
  # Not thread-safe: the job's thread changes `entities` (and sets the fields before its first
  # event); `json` is set once, by whichever thread encodes the job's first event.
  Job = Struct.new(:job_id, :attempt, :job, :queue, :correlation_id, :parent_job_id, :entities, :json)

  # Turns an event into the line of NDJSON serve reads (docs/events.md), in the thread that
  # records it: the buffer then holds bytes, not objects (see EventBuffer).
  #
  # Most events are a job's ordinary events: IDs of ASCII letters and digits, a class and queue
  # seen a thousand times before, and a Job that sent an event already. Those are written from
  # pieces: the Job's fields once per attempt, the state's JSON from a cache, then one
  # interpolation. Anything else — other fields, strings that need escaping or scrubbing, a
  # value JSON cannot hold — takes the general way: the same event as a Hash through
  # JSON.generate. Both give the same JSON (tests/server/clients/test_limits.rb).
  #
  # Thread-safe: the name cache is replaced, never changed, and a Job's `json` is the same
  # whichever thread writes it first.
  class Encoder
    # The fields a Job holds, in its order.
    JOB_FIELDS = %i[job_id attempt job queue correlation_id parent_job_id].freeze
    # What JSON escapes in ASCII.
    ESCAPED = /["\\\x00-\x1f\x7f]/.freeze
    NAME_CACHE = 1000

    def initialize(worker)
      @worker = worker
      @worker_json = ",\"worker\":#{general_json(worker)}"
      @names = {}.freeze
    end

    # One event of `job` as one line of JSON with its newline; raises if the event cannot be
    # JSON (a NaN, an object JSON refuses). `at`: µs since the epoch; `entities`: an Array or
    # nil; `error`: a Hash or nil; `others`: more fields (a Hash) or nil.
    def line(job, state, at, entities = nil, error = nil, others = nil)
      plain_line(job, state, at, entities, error, others) || general_line(job, state, at, entities, error, others)
    end

    # The event as the Hash serve reads; nil fields are left out (serve reads null as absent).
    def event_of(job, state, at, entities = nil, error = nil, others = nil)
      event = { job_id: job.job_id.to_s, state: state.to_s, at: at, worker: @worker }
      JOB_FIELDS.each { |name| event[name] = job[name] unless name == :job_id || job[name].nil? }
      event[:entities] = entities unless entities.nil?
      event[:error] = error unless error.nil?
      others&.each { |key, value| event[key] = value unless value.nil? }
      event
    end

    def general_line(...)
      general_json(event_of(...)) << "\n"
    end

    private

    # nil when the event needs the general way.
    def plain_line(job, state, at, entities, error, others)
      return nil unless others.nil? && at.is_a?(Integer)

      fields = job.json
      fields = job.json = plain_fields(job) || false if fields.nil?
      return nil unless fields && (state = name(state))

      "{\"state\":#{state},\"at\":#{at}#{@worker_json}#{fields}" \
        "#{",\"entities\":#{JSON.generate(entities)}" if entities}#{",\"error\":#{JSON.generate(error)}" if error}}\n"
    rescue JSON::GeneratorError, EncodingError # bad bytes: the general way scrubs
      nil
    end

    # The Job's fields as JSON, after a comma; nil if they need the general way. A job's usual
    # fields in one flat interpolation: each nested one is a String more.
    def plain_fields(job)
      job_id = job.job_id
      attempt = job.attempt
      klass = job.job
      queue = job.queue
      correlation = job.correlation_id
      parent = job.parent_job_id
      return nil unless plain?(job_id) && (attempt.nil? || attempt.is_a?(Integer)) &&
                        (klass.nil? || (klass = name(klass))) && (queue.nil? || (queue = name(queue))) &&
                        (correlation.nil? || plain?(correlation)) && (parent.nil? || plain?(parent))

      if attempt && klass && queue && correlation && parent.nil?
        return ",\"job_id\":\"#{job_id}\",\"attempt\":#{attempt},\"job\":#{klass},\"queue\":#{queue}," \
               "\"correlation_id\":\"#{correlation}\""
      end

      ",\"job_id\":\"#{job_id}\"#{",\"attempt\":#{attempt}" if attempt}" \
        "#{",\"job\":#{klass}" if klass}#{",\"queue\":#{queue}" if queue}" \
        "#{",\"correlation_id\":\"#{correlation}\"" if correlation}#{",\"parent_job_id\":\"#{parent}\"" if parent}"
    end

    # A String that JSON holds as it is between quotes: ASCII, no quote, backslash or control.
    def plain?(value)
      value.is_a?(String) && value.ascii_only? && !value.match?(ESCAPED)
    end

    # A class, queue or state name as JSON, from the cache; nil if it needs the general way.
    def name(value)
      quoted = @names[value]
      return quoted if quoted
      return nil unless plain?(value)

      quoted = "\"#{value}\"".freeze
      names = @names.size >= NAME_CACHE ? {} : @names.dup
      names[value.frozen? ? value : value.dup.freeze] = quoted
      @names = names.freeze
      quoted
    end

    # Most events are valid UTF-8 already: scrub only those JSON refuses.
    def general_json(value)
      JSON.generate(value)
    rescue JSON::GeneratorError, EncodingError
      JSON.generate(JobTrail.scrub(value))
    end
  end
end
