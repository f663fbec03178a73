# frozen_string_literal: true

require "json"
require "net/http"
require "uri"

module JobTrail
  # Exponential, capped, jittered delays between retries (a random point in the upper half of
  # the ceiling, so a fleet that loses `serve` at the same moment does not retry in step).
  # Not thread-safe: the sender thread's own.
  class Backoff
    def initialize(first: 0.1, cap: 5.0)
      @first = first
      @cap = cap
      @failures = 0
    end

    def next_delay
      @failures += 1
      ceiling = [@cap, @first * (2**[@failures - 1, 16].min)].min
      ceiling / 2 + rand * ceiling / 2
    end

    def reset
      @failures = 0
    end
  end

  # The back of the client: posts NDJSON batches to `jobtrail serve` over one persistent
  # HTTP/1.1 keep-alive connection, reconnecting when it breaks. Never raises.
  #
  # Not thread-safe: only the sender thread calls `post`.
  class HttpPoster
    # What an answer means for the batch (docs/events.md).
    SENT = :sent         # 2xx: stored, or queued to be
    RETRY = :retry       # no answer, 5xx, 429: keep the batch and send it again after a backoff
    REJECTED = :rejected # other 4xx: resending cannot help

    # serve refuses a body over 16 MiB; stay well below it so one batch is never refused whole.
    MAX_BODY_BYTES = 4 * 1024 * 1024

    attr_reader :where

    def initialize(url, token:, timeout:)
      uri = URI.parse(url.to_s)
      unless %w[http https].include?(uri.scheme) && uri.host && !uri.host.empty?
        raise ArgumentError, "JOBTRAIL_URL must be http://HOST:PORT or https://HOST:PORT, not #{url.inspect}"
      end

      @uri = uri
      @path = "#{uri.path.to_s.chomp('/')}/v1/events"
      @where = "#{uri.scheme}://#{uri.host}:#{uri.port}#{@path}" # never the credentials
      @token = token.to_s
      @timeout = timeout
      @http = nil
    end

    # Sends `body` (`count` encoded events); returns [SENT | RETRY | REJECTED, message for the
    # log or nil, how many events serve rejected one by one].
    def post(body, count, durable:)
      request = Net::HTTP::Post.new(durable ? "#{@path}?wait=commit" : @path,
                                    "Content-Type" => "application/x-ndjson")
      request["Authorization"] = "Bearer #{@token}" unless @token.empty?
      request.body = body
      response = exchange(request)
      status = response.code.to_i
      return [SENT, nil, 0] if status.between?(200, 299)

      text = response.body.to_s[0, 300]
      return [RETRY, "jobtrail serve answered #{status}: #{text}", 0] if status >= 500 || status == 429

      [REJECTED, "jobtrail serve refused events: #{status} #{text}", rejected_count(response.body, count)]
    rescue StandardError => e # no answer: keep the batch and retry
      close
      [RETRY, "cannot reach jobtrail serve at #{@where}: #{e.class}: #{e.message}", 0]
    end

    def close
      @http&.finish if @http&.started?
    rescue StandardError
      nil
    ensure
      @http = nil
    end

    # In a forked child the socket is the parent's: forget it without closing the parent's stream.
    def forget_after_fork
      @http = nil
    end

    private

    def exchange(request)
      reused = !@http.nil?
      begin
        connect unless @http
        @http.request(request)
      rescue EOFError, Errno::ECONNRESET, Errno::EPIPE, IOError
        raise unless reused

        # serve had closed the idle keep-alive connection: once more on a new one (a resent
        # event carries its `at`, so serve stores it once even if the first try got through).
        close
        connect
        @http.request(request)
      end
    end

    def connect
      http = Net::HTTP.new(@uri.host, @uri.port)
      http.use_ssl = @uri.scheme == "https"
      http.open_timeout = @timeout
      http.read_timeout = @timeout
      http.write_timeout = @timeout
      http.keep_alive_timeout = 30
      http.start
      @http = http
    end

    # serve's 400 says which events it refused and records the others (docs/events.md).
    def rejected_count(body, sent)
      answer = JSON.parse(body.to_s)
      rejected = answer.is_a?(Hash) ? answer["rejected"] : nil
      rejected.is_a?(Array) && !rejected.empty? ? rejected.size : sent
    rescue StandardError
      sent
    end
  end
end
