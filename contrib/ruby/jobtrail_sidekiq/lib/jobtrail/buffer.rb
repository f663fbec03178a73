# frozen_string_literal: true

module JobTrail
  # The front of the client: a bounded in-process buffer of events between the threads that
  # record (jobs, web requests) and the one sender thread.
  #
  # Thread-safe: any number of producers, one consumer. `push` is what a job pays for reporting:
  # one uncontended mutex and an array append, no I/O. A full buffer refuses the event and counts
  # it; it never blocks the caller.
  class EventBuffer
    attr_reader :capacity

    def initialize(capacity)
      @capacity = [capacity.to_i, 1].max
      @events = []
      @mutex = Mutex.new
      @wake = ConditionVariable.new
      @dropped = 0
    end

    # Queues one event; false (and counted as dropped) when the buffer is full.
    def push(event)
      @mutex.synchronize do
        if @events.size >= @capacity
          @dropped += 1
          return false
        end
        @events << event
        @wake.signal
      end
      true
    end

    # Up to `limit` events from the front, oldest first; waits up to `timeout` seconds for one.
    # Only the sender calls this.
    def take(limit, timeout)
      @mutex.synchronize do
        @wake.wait(@mutex, timeout) if @events.empty? && timeout.positive?
        @events.shift(limit)
      end
    end

    # Wakes a sender waiting in `take` (to stop, or to flush now).
    def wake
      @mutex.synchronize { @wake.signal }
    end

    def size
      @mutex.synchronize { @events.size }
    end

    def dropped
      @mutex.synchronize { @dropped }
    end

    # Counts `count` events as dropped that left the buffer but will never be sent (the process
    # exits with them still unsent).
    def count_dropped(count)
      @mutex.synchronize { @dropped += count }
    end
  end
end
