# frozen_string_literal: true

# The Ruby client keeps every field within the server's byte limits, makes strings valid UTF-8,
# tells an unencodable event from an unreachable server, and sends `at`.
# Run: ruby test_limits.rb JOBTRAIL_BINARY (with contrib/ruby/jobtrail_sidekiq/lib on -I).

require "fileutils"
require "json"
require "logger"
require "minitest/autorun"
require "open3"
require "tmpdir"
require "jobtrail_sidekiq"

JOBTRAIL = ARGV.shift || "jobtrail"

class LimitsTest < Minitest::Test
  def test_multibyte_text_is_cut_by_bytes_between_characters
    head = JobTrail.utf8_head("é" * 10_000, JobTrail::MAX_MESSAGE_BYTES)
    assert_operator head.bytesize, :<=, JobTrail::MAX_MESSAGE_BYTES
    assert_operator head.bytesize, :>, JobTrail::MAX_MESSAGE_BYTES - 2
    assert head.valid_encoding?
    assert_equal ["é"], head.chars.uniq
    tail = JobTrail.utf8_tail("€" * 100, JobTrail::MAX_CLASS_BYTES)
    assert_operator tail.bytesize, :<=, JobTrail::MAX_CLASS_BYTES
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

  def test_a_huge_error_with_bad_bytes_is_accepted
    client = JobTrail::Client.new(url: @url, token: nil)
    message = "\xFF#{"é" * 10_000}"
    error = { class: JobTrail.utf8_head("Boom", JobTrail::MAX_CLASS_BYTES),
              message: JobTrail.utf8_head(message, JobTrail::MAX_MESSAGE_BYTES) }
    assert client.record("r1", "failed", attempt: 1, error: error)
    # Not cut, but scrubbed on the way out: JSON.generate would refuse the stray byte.
    assert client.record("r1", "failed", attempt: 2, error: { class: "E", message: "bad \xFF byte".b })
    assert_equal 0.0, client.instance_variable_get(:@down_until)
  end

  def test_an_unencodable_event_does_not_mark_the_server_down
    client = JobTrail::Client.new(url: @url, token: nil, logger: Logger.new(File::NULL))
    refute client.record("r2", "started", attempt: Float::NAN)
    assert_equal 0.0, client.instance_variable_get(:@down_until)
    assert client.record("r2", "started", attempt: 1)
  end

  def test_every_event_is_sent_with_at
    client = JobTrail::Client.new(url: @url, token: nil)
    body = client.send(:encode, [{ job_id: "r3", state: "enqueued" }, { "job_id" => "r3", "state" => "started", "at" => 1 }])
    events = body.lines.map { |line| JSON.parse(line) }
    assert_kind_of Integer, events[0]["at"]
    assert_equal 1, events[1]["at"]
    assert_equal 1, body.lines[1].scan('"at"').size
  end
end
