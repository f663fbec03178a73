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

  def test_the_cut_is_the_servers_byte_for_byte
    # As tracker/src/event.cpp's cut_to: the start, backed off to a character, then the marker.
    ["a" * 9000, "a" + "é" * 4500, "€" * 3000].each do |text|
      cut = JobTrail.cut_free_text(text, 8192)
      tail = "\u2026[truncated from #{text.bytesize} bytes]"
      finish = 8192 - tail.bytesize
      finish -= 1 while (text.getbyte(finish) & 0xC0) == 0x80
      assert_equal (text.byteslice(0, finish) + tail).b, cut.b
      assert cut.valid_encoding?
    end
    assert_equal "é" * 4096, JobTrail.cut_free_text("é" * 4096, 8192)
  end

  def test_invalid_and_binary_strings_are_scrubbed
    scrubbed = JobTrail.scrub({ error: { message: "bad \xFF byte".b, class: "caf\xC3\xA9".b }, list: ["\xFE"] })
    assert_equal "bad \uFFFD byte", scrubbed[:error][:message]
    assert_equal "café", scrubbed[:error][:class]
    assert_equal ["\uFFFD"], scrubbed[:list]
    JSON.generate(scrubbed) # would raise on invalid UTF-8
  end
end

# The two ways an event becomes JSON (JobTrail::Encoder): pieces for a job's ordinary events,
# JSON.generate for anything else. They must say the same.
class EncoderTest < Minitest::Test
  AT = 1_795_341_600_000_000

  def setup
    @encoder = JobTrail::Encoder.new("host:42")
  end

  def job(**fields)
    JobTrail::Job.new(fields.fetch(:job_id, "0123456789abcdef01234567"), fields.fetch(:attempt, 1),
                      fields.fetch(:job, "InvoiceJob"), fields.fetch(:queue, "default"),
                      fields.fetch(:correlation_id, "4bf92f3577b34da6a3ce929d0e0e4736"), fields[:parent_job_id])
  end

  def parsed(*event)
    JSON.parse(@encoder.line(*event))
  end

  def test_an_ordinary_event_is_written_from_pieces_and_says_what_json_generate_says
    event = [job(parent_job_id: "fedcba9876543210fedcba98"), "started", AT, ["user:7", "invoice:2026-11"],
             { class: "IOError", message: "gateway \"timed\" out\n\tat line 1" }]
    assert @encoder.send(:plain_line, *event, nil), "an ordinary event took the general way"
    assert_equal JSON.parse(@encoder.general_line(*event)), parsed(*event)
    line = parsed(*event)
    assert_equal({ "job_id" => "0123456789abcdef01234567", "state" => "started", "at" => AT, "worker" => "host:42",
                   "attempt" => 1, "job" => "InvoiceJob", "queue" => "default",
                   "correlation_id" => "4bf92f3577b34da6a3ce929d0e0e4736", "parent_job_id" => "fedcba9876543210fedcba98",
                   "entities" => ["user:7", "invoice:2026-11"],
                   "error" => { "class" => "IOError", "message" => "gateway \"timed\" out\n\tat line 1" } }, line)
  end

  def test_the_second_event_of_a_job_reuses_its_fields_and_stays_right
    running = job
    first = parsed(running, "started", AT)
    assert_equal JSON.parse(@encoder.general_line(running, "started", AT)), first
    second = parsed(running, "succeeded", AT + 1)
    assert_equal first.merge("state" => "succeeded", "at" => AT + 1), second
  end

  def test_nil_fields_are_left_out
    line = parsed(job(attempt: nil, queue: nil, correlation_id: nil), "enqueued", AT)
    refute line.key?("attempt")
    refute line.key?("queue")
    refute line.key?("correlation_id")
    refute line.key?("parent_job_id")
    assert_equal "InvoiceJob", line["job"]
  end

  # Each of these needs escaping, scrubbing or a field the pieces do not know: the general way,
  # with the same result as JSON.generate of the scrubbed event.
  def test_strings_that_need_escaping_or_scrubbing_take_the_general_way
    odd = [[job(job_id: "quote\"d"), "started", AT], [job(job: "Café::Job"), "started", AT],
           [job(queue: "tab\tqueue"), "started", AT], [job(correlation_id: "bad \xFF".b), "started", AT],
           [job, "failed", AT, nil, { message: "bad \xFF byte".b }], [job, "started", AT, nil, nil, { note: "x" }],
           [job(job_id: 42), "started", AT]]
    odd.each do |event|
      expected = JSON.parse(JSON.generate(JobTrail.scrub(@encoder.event_of(*event))))
      assert_equal expected, parsed(*event), "#{event.inspect} encoded differently"
    end
    assert_equal "quote\"d", parsed(*odd[0])["job_id"]
    assert_equal "Café::Job", parsed(*odd[1])["job"]
    assert_equal "bad \uFFFD", parsed(*odd[3])["correlation_id"]
    assert_equal "x", parsed(*odd[5])["note"]
    assert_equal "42", parsed(*odd[6])["job_id"]
  end

  def test_a_value_json_cannot_hold_raises
    assert_raises(JSON::GeneratorError) { @encoder.line(job(attempt: Float::NAN), "started", AT) }
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

  def test_a_100_kb_error_is_stored_cut_with_the_marker_and_its_length
    client = JobTrail::Client.new(url: @url, token: nil)
    error = RuntimeError.new("x" * 100_000)
    error.set_backtrace(["app/jobs/long_job.rb:1:in `perform'"])
    assert client.record("r-long", "failed", durable: true, attempt: 1, error: JobTrail.error_of(error))
    stored = shown("r-long")["last_error"]
    assert stored["message"].end_with?("x\u2026[truncated from 100000 bytes]")
    assert_equal JobTrail::Client::MAX_MESSAGE_BYTES, stored["message"].bytesize
    assert_equal "RuntimeError", stored["class"]
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
