"""The front of the client: a bounded in-process buffer of events.

Thread-safe. ``append`` is what a job or a web request pays for reporting: one deque append
and a length test, no lock, no I/O. A full buffer drops the event and counts it; it never
blocks the caller.
"""

import collections
import threading


class EventBuffer:
    """Bounded FIFO of events (dicts) between the recording threads and the sender thread.

    Thread-safe: any number of producers, one consumer (the sender). Appends rely on deque's
    atomic append; the length test may overshoot the capacity by the number of threads
    appending at that instant, which keeps the bound without a lock on the hot path.
    """

    def __init__(self, capacity):
        self.capacity = max(1, int(capacity))
        self._events = collections.deque()
        self._wake = threading.Event()  # set when events wait and the sender may be asleep
        self.dropped = 0  # events refused because the buffer was full

    def append(self, event):
        """Queues one event; False (and counted) when the buffer is full."""
        if len(self._events) >= self.capacity:
            self.dropped += 1  # a racy += only ever under-counts by a lost increment
            return False
        self._events.append(event)
        if not self._wake.is_set():
            self._wake.set()
        return True

    def take(self, limit):
        """Up to ``limit`` events from the front, oldest first (only the sender calls this)."""
        batch = []
        popleft = self._events.popleft
        try:
            while len(batch) < limit:
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def wait(self, timeout):
        """Sleeps until an event is appended or ``timeout`` seconds pass."""
        if not self._events:
            self._wake.wait(timeout)
        self._wake.clear()

    def wake(self):
        self._wake.set()

    def __len__(self):
        return len(self._events)

    def reset_after_fork(self):
        """In a forked child: the parent's events are the parent's to send; start empty."""
        self._events = collections.deque()
        self._wake = threading.Event()
        self.dropped = 0
