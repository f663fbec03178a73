# frozen_string_literal: true

# The cost of the jobtrail Sidekiq client (contrib/ruby/jobtrail_sidekiq), measured with a real
# `sidekiq` worker on a real redis-server reporting to a real `jobtrail serve`.
#
#   1. the cost added to an enqueue on the caller's thread: JOBTRAIL_BENCH_JOBS perform_async
#      calls with the client middleware and as many without, interleaved in rounds of 100 so
#      that the machine's load hits both alike; each call timed alone; added = tracked - plain
#      at p50 and at p99;
#   2. throughput: the same JOBTRAIL_BENCH_JOBS trivial jobs, enqueued beforehand, drained by one
#      `sidekiq -c JOBTRAIL_BENCH_CONCURRENCY` worker, plain and then tracked (the worker loads
#      the client only when tracked); jobs/s from the first job's start to the last job's end,
#      timed inside the worker, and the worker process's CPU time over that span (all its
#      threads: less swayed by the machine's load than the wall clock, it says what the client
#      costs a job) and, during the tracked runs, serve's (it shares the machine's cores);
#      JOBTRAIL_BENCH_ROUNDS alternating runs of each, medians.
# Prints ONE JSON line on stdout:
#   {"worker":"sidekiq","jobs":N,"plain_jobs_per_s":x,"tracked_jobs_per_s":y,
#    "plain_cpu_us_per_job":c,"tracked_cpu_us_per_job":d,"serve_cpu_us_per_job":s,
#    "enqueue_added_us_p50":a,"enqueue_added_us_p99":b}
# and progress on stderr. The aims (issue 10): tracked/plain >= 0.9, <= 50 µs added at p50.
#
# Environment:
#   REDIS_URL                   redis to use (only the bench's own queues and keys are
#                               touched); unset: a redis-server of our own on a port the kernel picks
#   JOBTRAIL_URL                a running `jobtrail serve`; unset: one of our own from
#                               JOBTRAIL_BIN (default build/cli/jobtrail), on a temp store
#   JOBTRAIL_BENCH_JOBS         jobs per run (default 2000)
#   JOBTRAIL_BENCH_CONCURRENCY  the worker's threads, sidekiq -c (default 10)
#   JOBTRAIL_BENCH_ROUNDS       drains of each kind, alternating; the medians count (default 3)
#   SIDEKIQ                     the sidekiq command (default sidekiq, Debian's ruby-sidekiq)
#
# Alone, from the top of the repo after `cmake --build build --target jobtrail`:
#   ruby bench/workers/sidekiq_bench.rb
# bench/workers_bench.sh runs it with its own redis and serve (REDIS_URL, JOBTRAIL_URL set).

require "json"
require "sidekiq"

# Debian's redis gem 4.8 warns about an API Sidekiq 6.4 still uses; not ours to fix.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module SidekiqBench
  QUEUE = "bench"
  CLIENT = File.expand_path("../../contrib/ruby/jobtrail_sidekiq/lib/jobtrail_sidekiq", __dir__)

  # The trivial job both runs drain.
  class NoopJob
    include Sidekiq::Worker
    sidekiq_options queue: QUEUE, retry: false
    def perform(_index); end
  end

  # In the worker, outermost: the time from the first job's start to the last job's end, and
  # the process's CPU time over it, written to redis as "SECONDS CPU_SECONDS" once
  # JOBTRAIL_BENCH_JOBS jobs ran. Thread-safe (a mutex around the count).
  class DrainClock
    @mutex = Mutex.new
    @done = 0
    @first = nil

    class << self
      def finished(now)
        @mutex.synchronize do
          @first ||= now
          @done += 1
          @done == Integer(ENV.fetch("JOBTRAIL_BENCH_JOBS")) ? [now - @first, cpu - @first_cpu] : nil
        end
      end

      def started(now)
        @mutex.synchronize do
          @first_cpu ||= cpu
          @first ||= now
        end
      end

      def cpu
        Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
      end
    end

    def call(_worker, _job, _queue)
      DrainClock.started(Process.clock_gettime(Process::CLOCK_MONOTONIC))
      yield
    ensure
      elapsed, cpu = DrainClock.finished(Process.clock_gettime(Process::CLOCK_MONOTONIC))
      Sidekiq.redis { |redis| redis.set("bench:elapsed", "#{elapsed} #{cpu}") } if elapsed
    end
  end

  def self.percentile(sorted, fraction)
    sorted[[(sorted.size * fraction).ceil - 1, 0].max]
  end
end

if ENV["JOBTRAIL_BENCH_ROLE"] == "worker"
  # Loaded by `sidekiq -r` (the worker of a run).
  Sidekiq.configure_server do |config|
    config.server_middleware { |chain| chain.add SidekiqBench::DrainClock }
  end
  if ENV["JOBTRAIL_BENCH_TRACKED"] == "1"
    require SidekiqBench::CLIENT
    JobTrail::Sidekiq.install
    if (stats_key = ENV["JOBTRAIL_BENCH_STATS_KEY"])
      at_exit { Sidekiq.redis { |redis| redis.set(stats_key, JSON.generate(JobTrail.client.stats)) } }
    end
  end
elsif $PROGRAM_NAME == __FILE__
  require "securerandom"
  require "socket"
  require "tmpdir"
  require SidekiqBench::CLIENT # its middleware is added to and taken off the chain below

  jobs = Integer(ENV.fetch("JOBTRAIL_BENCH_JOBS", "2000"))
  concurrency = Integer(ENV.fetch("JOBTRAIL_BENCH_CONCURRENCY", "10"))
  rounds = Integer(ENV.fetch("JOBTRAIL_BENCH_ROUNDS", "3"))
  sidekiq = ENV.fetch("SIDEKIQ", "sidekiq")
  root = File.expand_path("../..", __dir__)
  work = Dir.mktmpdir("sidekiq_bench")
  children = []
  at_exit do
    children.each { |pid| Process.kill("TERM", pid) rescue nil } # rubocop:disable Style/RescueModifier
    children.each { |pid| Process.wait(pid) rescue nil } # rubocop:disable Style/RescueModifier
    FileUtils.rm_rf(work)
  end
  say = ->(text) { warn("sidekiq_bench: #{text}") }
  free_port = -> { TCPServer.open("127.0.0.1", 0) { |server| server.addr[1] } }
  wait_until = lambda do |seconds, what, &ready|
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    until ready.call
      abort "sidekiq_bench: #{what} within #{seconds} s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.05
    end
  end

  unless ENV["REDIS_URL"]
    port = free_port.call
    children << spawn("redis-server", "--bind", "127.0.0.1", "--port", port.to_s, "--dir", work, "--save", "",
                      "--appendonly", "no", out: File::NULL, err: File::NULL)
    ENV["REDIS_URL"] = "redis://127.0.0.1:#{port}/0"
    wait_until.call(10, "redis-server did not start") { system("redis-cli", "-p", port.to_s, "ping", out: File::NULL, err: File::NULL) }
  end
  unless ENV["JOBTRAIL_URL"]
    binary = ENV.fetch("JOBTRAIL_BIN", File.join(root, "build/cli/jobtrail"))
    abort "sidekiq_bench: no #{binary}; build it (cmake --build build --target jobtrail) or set JOBTRAIL_URL" unless File.executable?(binary)
    out = File.join(work, "serve.out")
    children << spawn(binary, "serve", "--db", File.join(work, "bench.db"), "--listen", "127.0.0.1:0",
                      out: out, err: File.join(work, "serve.log"))
    ENV["JOBTRAIL_BENCH_SERVE_PID"] = children.last.to_s
    wait_until.call(10, "jobtrail serve did not start") { File.read(out).include?("listening on") }
    ENV["JOBTRAIL_URL"] = File.read(out)[%r{listening on (http://\S+)}, 1]
  end
  JobTrail.client = JobTrail::Client.new # from the environment set just now
  say.call("redis #{ENV['REDIS_URL']}, serve #{ENV['JOBTRAIL_URL']}, #{jobs} jobs, -c #{concurrency}")
  Sidekiq.configure_client { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }
  own_keys = %w[queue:bench queue:enqueue_bench queue:warmup bench:elapsed bench:client_stats]
  clear = -> { Sidekiq.redis { |redis| redis.del(*own_keys) } }
  clear.call

  # 1. The enqueue on the caller's thread, plain and tracked in alternating rounds.
  tracked_chain = lambda do |on|
    Sidekiq.configure_client do |config|
      config.client_middleware do |chain|
        on ? chain.add(JobTrail::Sidekiq::ClientMiddleware) : chain.remove(JobTrail::Sidekiq::ClientMiddleware)
      end
    end
  end
  latencies = { false => [], true => [] }
  clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_microsecond) }
  200.times { |index| SidekiqBench::NoopJob.set(queue: "warmup").perform_async(index) } # warm up both paths
  tracked_chain.call(true)
  200.times { |index| SidekiqBench::NoopJob.set(queue: "warmup").perform_async(index) }
  JobTrail.with_correlation do
    (jobs / 100.0).ceil.times do |round|
      [false, true].each do |tracked|
        tracked_chain.call(tracked)
        100.times do |index|
          started = clock.call
          SidekiqBench::NoopJob.set(queue: "enqueue_bench").perform_async(round * 100 + index)
          latencies[tracked] << clock.call - started
        end
      end
    end
  end
  tracked_chain.call(false)
  clear.call
  JobTrail.client.flush(30)
  enqueue_stats = JobTrail.client.stats
  plain, tracked = latencies[false].sort, latencies[true].sort
  p50 = SidekiqBench.percentile(tracked, 0.5) - SidekiqBench.percentile(plain, 0.5)
  p99 = SidekiqBench.percentile(tracked, 0.99) - SidekiqBench.percentile(plain, 0.99)
  say.call(format("enqueue p50 plain %.1f µs, tracked %.1f µs; p99 plain %.1f µs, tracked %.1f µs; client %s",
                  SidekiqBench.percentile(plain, 0.5), SidekiqBench.percentile(tracked, 0.5),
                  SidekiqBench.percentile(plain, 0.99), SidekiqBench.percentile(tracked, 0.99), enqueue_stats))

  # 2. Draining the same jobs with a real worker, plain then tracked.
  # serve's CPU time (s), when we know its pid (ours, or bench/workers_bench.sh's): it runs on
  # the same cores as the worker, and what it spends ingesting is not the worker's to spend.
  require "etc"
  serve_pid = ENV["JOBTRAIL_BENCH_SERVE_PID"]
  serve_cpu = lambda do
    fields = File.read("/proc/#{serve_pid}/stat").split(") ").last.split
    (Integer(fields[11]) + Integer(fields[12])) / Float(Etc.sysconf(Etc::SC_CLK_TCK))
  rescue StandardError
    nil
  end
  drain = lambda do |tracked_run|
    clear.call
    tracked_chain.call(tracked_run)
    JobTrail.with_correlation do
      jobs.times.each_slice(1000) do |slice|
        Sidekiq::Client.push_bulk("class" => SidekiqBench::NoopJob, "args" => slice.map { |index| [index] })
      end
    end
    tracked_chain.call(false)
    # The enqueues' own events go out now, not while the worker drains: serve ingesting them
    # beside a tracked drain (and not beside a plain one) would be a cost of the enqueue.
    JobTrail.client.flush(30)
    stats_key = "bench:client_stats"
    env = { "JOBTRAIL_BENCH_ROLE" => "worker", "JOBTRAIL_BENCH_TRACKED" => tracked_run ? "1" : "0",
            "JOBTRAIL_BENCH_JOBS" => jobs.to_s, "JOBTRAIL_BENCH_STATS_KEY" => stats_key }
    log = File.join(work, "sidekiq_#{tracked_run ? 'tracked' : 'plain'}.log")
    serve_before = serve_cpu.call
    pid = spawn(env, sidekiq, "-r", File.expand_path(__FILE__), "-q", SidekiqBench::QUEUE, "-c", concurrency.to_s,
                "-t", "5", chdir: work, out: log, err: log)
    children << pid
    span = nil
    wait_until.call(300, "the worker did not drain #{jobs} jobs (see #{log})") do
      span = Sidekiq.redis { |redis| redis.get("bench:elapsed") }
    end
    elapsed, cpu = span.split.map { |value| Float(value) }
    Process.kill("TERM", pid)
    Process.wait(pid)
    children.delete(pid)
    sleep 0.1 if tracked_run # the worker sent its last events at exit; serve commits within ~20 ms
    serve_us = serve_before && (after = serve_cpu.call) ? (after - serve_before) * 1e6 / jobs : nil
    rate = jobs / elapsed
    client = tracked_run ? Sidekiq.redis { |redis| redis.get(stats_key) } : nil
    say.call(format("%s: %d jobs in %.3f s, %.0f jobs/s, worker CPU %.1f µs a job%s%s", tracked_run ? "tracked" : "plain",
                    jobs, elapsed, rate, cpu * 1e6 / jobs, serve_us && tracked_run ? format(", serve CPU %.1f µs a job", serve_us) : "",
                    client ? "; worker's client #{client}" : ""))
    [rate, cpu * 1e6 / jobs, serve_us]
  end
  # Alternating runs, medians: the machine's load drifts between runs.
  runs = { false => [], true => [] }
  rounds.times { [false, true].each { |tracked_run| runs[tracked_run] << drain.call(tracked_run) } }
  median = ->(values) { values.sort[rounds / 2] }
  plain_rate, tracked_rate = [false, true].map { |tracked_run| median.call(runs[tracked_run].map(&:first)) }
  plain_cpu, tracked_cpu = [false, true].map { |tracked_run| median.call(runs[tracked_run].map { |run| run[1] }) }
  serve_us = runs[true].map(&:last).compact
  serve_us = serve_us.size == rounds ? median.call(serve_us) : nil
  say.call(format("tracked / plain = %.2f (aim >= 0.9); worker CPU a job plain %.1f µs, tracked %.1f µs (+%.1f)%s; " \
                  "enqueue added p50 %.1f µs (aim <= 50)", tracked_rate / plain_rate, plain_cpu, tracked_cpu,
                  tracked_cpu - plain_cpu, serve_us ? format(", serve %.1f µs a job", serve_us) : "", p50))
  puts JSON.generate(worker: "sidekiq", jobs: jobs, plain_jobs_per_s: plain_rate.round(1),
                     tracked_jobs_per_s: tracked_rate.round(1), plain_cpu_us_per_job: plain_cpu.round(1),
                     tracked_cpu_us_per_job: tracked_cpu.round(1), serve_cpu_us_per_job: serve_us&.round(1),
                     enqueue_added_us_p50: p50.round(1),
                     enqueue_added_us_p99: p99.round(1))
end
