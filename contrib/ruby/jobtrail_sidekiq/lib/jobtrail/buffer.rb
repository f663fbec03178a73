# frozen_string_literal: true

module JobTrail
  # The front of the client: a bounded in-process buffer of encoded events (NDJSON lines)
  # between the threads that record (jobs, web requests) and the one sender thread.
  #
  # The lines are appended to chunks, each a request body of at most `batch` events and
  # `max_bytes` bytes, so that the sender posts a chunk as it is and nothing is kept per event:
  # a buffer of objects lived through the sender's linger and got promoted by the GC (measured
  # with a Sidekiq worker draining 20,000 jobs: 14 major collections, against 5 untracked;
  # with chunks, 8).
  # Durable events go in chunks of their own, with the callers waiting on them; chunks leave
  # in the order they were begun.
  #
  # Thread-safe: any number of producers, one consumer. `push` is what a job pays for reporting
  # besides encoding: one uncontended mutex and a string append, no I/O, and no wake-up of the
  # sender unless it asked for one (it sleeps until the first event, then lingers until a
  # chunk is full or its linger is over). A full buffer refuses the event and counts it; it
  # never blocks the caller.
  class EventBuffer
    # One request body: `count` lines in `body`; `waiters` (an Array) for a durable chunk.
    Chunk = Struct.new(:body, :count, :waiters)

    attr_reader :capacity

    def initialize(capacity, batch:, max_bytes:)
      @capacity = [capacity.to_i, 1].max
      @batch = batch
      @max_bytes = max_bytes
      @chunks = [] # the last one is filling
      @size = 0 # events in all chunks
      @mutex = Mutex.new
      @wake = ConditionVariable.new
      @wake_at = @capacity + 1 # the size at which a push wakes the sender; above capacity: never
      @hurry = false
      @dropped = 0
    end

    # Queues one encoded event; false (and counted as dropped) when the buffer is full. With a
    # `waiter` the event is durable: it goes in a durable chunk, and the waiter is finished
    # when that chunk is settled.
    def push(line, waiter = nil)
      @mutex.synchronize do
        if @size >= @capacity
          @dropped += 1
          return false
        end
        chunk = @chunks.last
        if chunk.nil? || chunk.count >= @batch || chunk.body.bytesize + line.bytesize > @max_bytes ||
           chunk.waiters.nil? != waiter.nil?
          @chunks << (chunk = Chunk.new(+"", 0, waiter && []))
        end
        chunk.body << line
        chunk.count += 1
        chunk.waiters << waiter if waiter
        @size += 1
        @wake.signal if @size >= @wake_at || waiter
      end
      true
    end

    # The sender waits here until `count` events are buffered, a durable one is, `hurry` was
    # called, or `timeout` seconds have passed. Only the sender calls this.
    def wait_for(count, timeout)
      @mutex.synchronize do
        return if @size >= count || @hurry || durable_waiting? || !timeout.positive?

        @wake_at = count
        @wake.wait(@mutex, timeout)
        @wake_at = @capacity + 1
      end
    end

    # The oldest chunk (a Chunk), or nil; the caller owns it. Only the sender calls this.
    def take
      @mutex.synchronize do
        @hurry = false
        chunk = @chunks.shift
        @size -= chunk.count if chunk
        chunk
      end
    end

    # Cuts the sender's wait short (to stop, or to flush now).
    def hurry
      @mutex.synchronize do
        @hurry = true
        @wake.signal
      end
    end

    def size
      @mutex.synchronize { @size }
    end

    def dropped
      @mutex.synchronize { @dropped }
    end

    # Counts `count` events as dropped that left the buffer but will never be sent (the process
    # exits with them still unsent).
    def count_dropped(count)
      @mutex.synchronize { @dropped += count }
    end

    private

    def durable_waiting?
      @chunks.any?(&:waiters)
    end
  end
end
