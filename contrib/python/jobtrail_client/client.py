"""The client: record() into the buffer, a sender thread that empties it, flush at exit.

The steps, as in the C++ tracker:
  1. record() stamps the event (`at` in µs, now) and appends it to the bounded buffer;
  2. the sender thread wakes, takes a batch (up to MAX_BATCH events and MAX_BODY_BYTES of JSON,
     one durability at a time);
  3. it posts the batch as NDJSON over one keep-alive connection;
  4. no answer or a 5xx: it keeps the batch and retries after a jittered, capped backoff —
     resending is safe because every event carries its `at` (the store skips a redelivery);
  5. flush(timeout) waits, bounded, until the buffer and the batch in flight are sent; atexit
     and the worker integrations (RQ's horse, Celery's child) call it before the process ends.
"""

import atexit
import json
import logging
import os
import select
import socket
import threading
import time

from . import fields
from .buffer import EventBuffer
from .sender import REJECTED, SENT, Backoff, HttpPoster

_log = logging.getLogger("jobtrail")

MAX_BATCH = 1000        # events per request: well under the server's 10,000
# Bytes of NDJSON per request, as the Ruby client: well under serve's --max-body (16 MiB), which
# 1,000 events with 64 KiB backtraces (66 MB) would pass, costing the whole batch its 413.
MAX_BODY_BYTES = 4 * 1024 * 1024
WARN_EVERY_S = 60.0     # at most one warning a minute


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _within_body_limit(batch, cut):
    """How many of ``batch[:cut]`` fit in one request of MAX_BODY_BYTES (at least one: a single
    event is far below it, its texts cut by fields.cut_free_text)."""
    size = 0
    for i in range(cut):
        size += len(json.dumps(batch[i], ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")) + 1
        if size > MAX_BODY_BYTES and i > 0:
            return i
    return cut


class Stats:
    """Counts readable by the application (client.stats()). Updated by the sender thread."""

    __slots__ = ("recorded", "sent", "dropped", "retried", "rejected", "pending")

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name, 0))

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self):
        return "Stats(%s)" % ", ".join("%s=%d" % item for item in self.as_dict().items())


class Client:
    """Reports events to `jobtrail serve` in the background. Thread-safe and fork-safe; its
    methods never raise into the application.

    url/token default to $JOBTRAIL_URL (http://127.0.0.1:8089) and $JOBTRAIL_TOKEN;
    capacity (events buffered while serve is slow or down) to $JOBTRAIL_BUFFER (10,000);
    exit_timeout (seconds flush() may take at exit) to $JOBTRAIL_EXIT_FLUSH_TIMEOUT (2);
    every event is sent durably (?wait=commit) with $JOBTRAIL_DURABLE=1.
    """

    def __init__(self, url=None, token=None, capacity=None, timeout=5.0, exit_timeout=None):
        self.url = (url or os.environ.get("JOBTRAIL_URL") or "http://127.0.0.1:8089").rstrip("/")
        self._poster = HttpPoster(self.url, token if token is not None else os.environ.get("JOBTRAIL_TOKEN", ""),
                                  timeout)
        self._buffer = EventBuffer(capacity or int(_env_float("JOBTRAIL_BUFFER", 10000)))
        self.exit_timeout = exit_timeout if exit_timeout is not None else _env_float("JOBTRAIL_EXIT_FLUSH_TIMEOUT", 2.0)
        self.worker = "%s:%d" % (socket.gethostname(), os.getpid())
        # $JOBTRAIL_DURABLE=1: every event waits for the commit (?wait=commit), not only those
        # of the job functions declared durable.
        # How long the sender lets a batch gather: $JOBTRAIL_LINGER seconds (0.05).
        self.linger = max(0.0, _env_float("JOBTRAIL_LINGER", 0.05))
        self.durable_all = os.environ.get("JOBTRAIL_DURABLE", "").lower() in ("1", "true", "yes")
        self._reset_state()
        atexit.register(self._flush_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _reset_state(self):
        self._pid = os.getpid()
        self._thread = None
        self._start_lock = threading.Lock()
        self._idle = threading.Condition()  # flush() waits on it for the sender to catch up
        self._in_flight = 0  # events taken from the buffer and not yet settled
        self._stats = Stats()
        self._backoff = Backoff()
        self._last_warning = 0.0
        self._quiet_failures = 0
        self._stopping = False
        self._stop = threading.Event()  # interrupts a backoff
        self._hurry = threading.Event()  # cuts the linger short: flush(), stop
        self._sending = []  # the part of the batch in flight, for drain()
        self._forward = None  # a pipe to a parent process (forward_to)

    # -- 1. record -------------------------------------------------------------------------
    def record(self, job_id, state, durable=False, **more):
        """Buffers one event; True if it was accepted (False: the buffer was full, counted)."""
        try:
            job_id = str(job_id)
            if len(job_id) > fields.MAX_ID_BYTES // 4:  # 4 bytes a character at most: shorter ones fit
                job_id = fields.utf8_head(job_id, fields.MAX_ID_BYTES)
            event = {"job_id": job_id, "state": state, "at": fields.now_us(), "worker": self.worker}
            for key, value in more.items():
                if value is not None and value != "" and value != []:
                    event[key] = value
            if durable or self.durable_all:
                event[_DURABLE] = True
            # No getpid() here: after a fork, _after_fork_in_child has already reset the state.
            if self._forward is not None and self._forward_one(event):
                self._stats.recorded += 1
                return True
            if self._thread is None:
                self._start()
            if self._buffer.append(event):
                self._stats.recorded += 1
                return True
            return False
        except Exception as error:  # noqa: BLE001 - reporting never raises into the job
            self._warn("jobtrail could not record an event: %r" % error)
            return False

    # -- 1b. or forward to a parent process -------------------------------------------------
    def forward_to(self, fd):
        """From now on, in this process, events go as JSON lines down the pipe ``fd`` to a
        longer-lived process that sends them (jobtrail_rq: the work horse to its worker), not
        through this process's sender. A full pipe falls back to the buffer."""
        os.set_blocking(fd, False)
        self._forward = fd

    def forwarding(self):
        """True if this process's events go down a pipe to another process (forward_to)."""
        return self._forward is not None

    def _forward_one(self, event):
        line = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "replace")
        if len(line) > select.PIPE_BUF:
            return False  # a write up to PIPE_BUF is atomic; a bigger event goes by the buffer
        try:
            return os.write(self._forward, line) == len(line)
        except OSError:
            return False

    # -- 2.-4. the sender thread -----------------------------------------------------------
    def _start(self):
        with self._start_lock:
            if self._pid != os.getpid():
                self._after_fork_in_child()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="jobtrail-sender", daemon=True)
                self._thread.start()

    def _run(self):
        buffer = self._buffer
        while not self._stopping:
            if not len(buffer):
                buffer.wait(1.0)
                continue
            # Linger: let a batch gather (flush() cuts it short; MAX_BATCH events go at once), so
            # that a busy process makes one request per LINGER, not one per event — each
            # request costs the process's other threads the GIL for a while.
            if len(buffer) < MAX_BATCH and not self._hurry.is_set():
                self._hurry.wait(self.linger)
            self._hurry.clear()
            batch = buffer.take(MAX_BATCH)
            # Until it is settled, the batch is what drain() hands over if the sender is stopped.
            self._sending, self._in_flight = batch, len(batch)
            try:
                while batch and not self._stopping:
                    # One durability per request: the durable events wait for the commit.
                    durable = bool(batch[0].get(_DURABLE))
                    cut = next((i for i, e in enumerate(batch) if bool(e.get(_DURABLE)) != durable), len(batch))
                    cut = _within_body_limit(batch, cut)
                    part = batch[:cut]
                    for event in part:
                        event.pop(_DURABLE, None)
                    if not self._send_until_settled(part, durable):
                        break  # stopped: the rest stays in self._sending
                    batch = batch[cut:]
                    self._sending, self._in_flight = batch, len(batch)
            except Exception as error:  # noqa: BLE001 - the thread must survive anything
                self._warn("jobtrail sender: %r" % error)
                self._sending, self._in_flight = [], 0
            finally:
                with self._idle:
                    self._idle.notify_all()

    def _send_until_settled(self, events, durable):
        """Sends until the server took or refused the events (True), or the sender is stopped (False)."""
        while True:
            outcome, message = self._poster.post(events, durable)
            if outcome == SENT:
                self._stats.sent += len(events)
                self._backoff.reset()
                return True
            if outcome == REJECTED:
                self._stats.rejected += len(events)
                self._warn(message)
                return True
            # RETRY: keep the batch; the buffer goes on taking events up to its capacity.
            self._stats.retried += len(events)
            self._warn(message + "; retrying, %d events waiting" % (len(events) + len(self._buffer)))
            if self._stop.wait(self._backoff.next_delay()):
                return False

    # -- 5. flush --------------------------------------------------------------------------
    def flush(self, timeout=2.0):
        """Waits until every recorded event is sent, at most ``timeout`` seconds; True if all were."""
        try:
            if self._pid != os.getpid() or self._thread is None:
                if not len(self._buffer):
                    return True
                self._start()
            deadline = time.monotonic() + max(0.0, timeout)
            self._hurry.set()
            self._buffer.wake()
            with self._idle:
                while len(self._buffer) or self._in_flight:
                    self._hurry.set()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._idle.wait(min(left, 0.05))
            return True
        except Exception as error:  # noqa: BLE001
            self._warn("jobtrail flush failed: %r" % error)
            return False

    def close(self, timeout=2.0):
        """Flushes (at most ``timeout`` seconds), stops the sender and closes its connection."""
        sent = self.flush(timeout)
        self._stop_sender()
        self._poster.close()
        return sent

    def _stop_sender(self):
        self._stopping = True
        self._stop.set()
        self._hurry.set()
        self._buffer.wake()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(self._poster.timeout + 1)

    def drain(self, timeout=2.0):
        """Flushes for at most ``timeout`` seconds, then stops the sender and returns the events
        it could not send (to hand to a longer-lived process: see jobtrail_rq). They keep their
        `at`, so an event that was in fact stored is recognised when it is sent again."""
        if self.flush(timeout):
            return []
        self._stop_sender()
        left = list(self._sending) + self._buffer.take(len(self._buffer) + MAX_BATCH)
        for event in left:
            event.pop(_DURABLE, None)
        return left

    def adopt(self, events):
        """Buffers events recorded elsewhere (drain() of another process) as they are; returns
        how many the buffer took."""
        taken = 0
        for event in events:
            if isinstance(event, dict) and "job_id" in event and "state" in event and "at" in event:
                if self._pid != os.getpid() or self._thread is None:
                    self._start()
                if self._buffer.append(event):
                    taken += 1
        self._stats.recorded += taken
        return taken

    def _flush_at_exit(self):
        if self._stopping:
            return  # closed: what it could not send was already said
        if not self.flush(self.exit_timeout):
            left = len(self._buffer) + self._in_flight
            self._warn("jobtrail: %d events not sent at exit (serve unreachable for %.1f s)" % (left, self.exit_timeout),
                       force=True)

    def stats(self):
        """Counts since the process started (or forked): recorded, sent, dropped, retried, rejected, pending."""
        stats = Stats(**self._stats.as_dict())
        stats.dropped = self._buffer.dropped
        stats.pending = len(self._buffer) + self._in_flight
        return stats

    def _after_fork_in_child(self):
        # The parent's thread does not exist here, its locks may be held, its socket is its own
        # and its buffered events are its to send: start from nothing.
        self._buffer.reset_after_fork()
        self._poster.forget_after_fork()
        self._reset_state()
        self.worker = "%s:%d" % (socket.gethostname(), os.getpid())

    def _warn(self, message, force=False):
        # At most one line a minute, with what happened since: a dead server must not flood the log.
        now = time.monotonic()
        if not force and self._last_warning and now - self._last_warning < WARN_EVERY_S:
            self._quiet_failures += 1
            return
        quiet, self._quiet_failures, self._last_warning = self._quiet_failures, 0, now
        stats = self.stats()
        try:
            _log.warning("%s (%s%s)", message, "sent %d, dropped %d, retried %d, rejected %d" % (
                stats.sent, stats.dropped, stats.retried, stats.rejected),
                "; %d more problems since the last warning" % quiet if quiet else "")
        except Exception:  # noqa: BLE001
            pass


_DURABLE = "\x00durable"  # a private key in the buffered event, removed before sending

_default = None
_default_lock = threading.Lock()


def default_client():
    """The process's client made from the environment, created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Client()
    return _default


def set_default_client(client):
    global _default
    _default = client
