# frozen_string_literal: true

# The Ruby client keeps every field within the server's byte limits, makes strings valid UTF-8,
# tells an unencodable event from an unreachable server, and sends `at`.
# Run: ruby test_limits.rb JOBTRAIL_BINARY (with contrib/ruby/jobtrail_sidekiq/lib on -I).

require "fileutils"
require "json"
require "logger"
require "minitest/autorun"
require "open3"
require "time"
require "tmpdir"
require "jobtrail_sidekiq"

JOBTRAIL = ARGV.shift || "jobtrail"

class LimitsTest < Minitest::Test
  def test_multibyte_text_is_cut_by_bytes_between_characters
    limit = JobTrail::Client::MAX_MESSAGE_BYTES
    head = JobTrail.utf8_head("é" * 10_000, limit)
    assert_operator head.bytesize, :<=, limit
    assert_operator head.bytesize, :>, limit - 2
    assert head.valid_encoding?
    assert_equal ["é"], head.chars.uniq
    tail = JobTrail.utf8_tail("€" * 100, JobTrail::Client::MAX_NAME_BYTES)
    assert_operator tail.bytesize, :<=, JobTrail::Client::MAX_NAME_BYTES
    assert_equal ["€"], tail.chars.uniq
  end

  def test_invalid_and_binary_strings_are_scrubbed
    scrubbed = JobTrail.scrub({ error: { message: "bad \xFF byte".b, class: "caf\xC3\xA9".b }, list: ["\xFE"] })
    assert_equal "bad \uFFFD byte", scrubbed[:error][:message]
    assert_equal "café", scrubbed[:error][:class]
    assert_equal ["\uFFFD"], scrubbed[:list]
    JSON.generate(scrubbed) # would raise on invalid UTF-8
  end
end

class ServerTest < Minitest::Test
  def setup
    @dir = Dir.mktmpdir
    @stdout, @serve = Open3.popen2(JOBTRAIL, "serve", "--db", "#{@dir}/jobs.db", "--listen", "127.0.0.1:0").values_at(1, 2)
    @url = @stdout.gets[/listening on (\S+)/, 1]
  end

  def teardown
    Process.kill("TERM", @serve.pid)
    @serve.value
    FileUtils.remove_entry(@dir)
  end

  def shown(job_id)
    out, status = Open3.capture2(JOBTRAIL, "show", job_id, "--db", "#{@dir}/jobs.db", "--format", "json")
    assert status.success?, "jobtrail show #{job_id} failed"
    JSON.parse(out)
  end

  # Durable records answer only once serve committed them, so `true` means stored.
  def test_a_huge_error_with_bad_bytes_is_accepted
    client = JobTrail::Client.new(url: @url, token: nil)
    assert client.record("r1", "failed", durable: true, attempt: 1, error: JobTrail.error_of(RuntimeError.new("\xFF#{"é" * 10_000}")))
    # Not cut, but scrubbed on the way out: JSON.generate would refuse the stray byte.
    assert client.record("r1", "failed", durable: true, attempt: 2, error: { class: "E", message: "bad \xFF byte".b })
    assert_equal 0, client.stats[:rejected]
    assert_equal 2, shown("r1")["events"].size
  ensure
    client&.close
  end

  def test_an_unencodable_event_does_not_mark_the_server_down
    client = JobTrail::Client.new(url: @url, token: nil, logger: Logger.new(File::NULL))
    refute client.record("r2", "started", durable: true, attempt: Float::NAN)
    assert_equal 1, client.stats[:rejected]
    assert client.record("r2", "started", durable: true, attempt: 1)
    assert_equal 0, client.stats[:retried]
  ensure
    client&.close
  end

  def test_every_event_is_sent_with_the_time_it_was_recorded
    client = JobTrail::Client.new(url: @url, token: nil)
    bodies = client.send(:encode, [["r3", "enqueued", 1_795_341_600_000_000, {}], ["r3", "started", 1_795_341_600_000_001, { attempt: 1, queue: nil }]])
    events = bodies.flatten.map { |line| JSON.parse(line) }
    assert_equal [1_795_341_600_000_000, 1_795_341_600_000_001], events.map { |event| event["at"] }
    refute events[1].key?("queue"), "nil fields are left out"
    # Stamped when recorded: the stored time lies between the moments around record.
    before = Time.now.utc
    assert client.record("r3", "enqueued", durable: true)
    stored = Time.iso8601(shown("r3")["enqueued_at"])
    assert_operator stored, :>=, before - 0.001
    assert_operator stored, :<=, Time.now.utc
  ensure
    client&.close
  end
end
