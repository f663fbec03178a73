"""Report RQ jobs to `jobtrail serve`.

    from jobtrail_rq import TrackedQueue, TrackedWorker, correlation

    with correlation(request.headers.get("X-Request-Id")):   # in the web request
        TrackedQueue("default", connection=redis).enqueue(send_welcome, user.id)

    rq worker --worker-class jobtrail_rq.TrackedWorker --queue-class jobtrail_rq.TrackedQueue

The correlation ID and the parent job travel in ``job.meta``, so jobs enqueued inside a job
join its trace. Reporting never raises into the application: a server that cannot be reached
costs a warning in the ``jobtrail`` logger, at most once a minute.
"""

import contextlib
import contextvars
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import rq

__all__ = ["Client", "TrackedQueue", "TrackedWorker", "correlation", "current_correlation_id", "default_client"]

_log = logging.getLogger("jobtrail")
_correlation_id = contextvars.ContextVar("jobtrail_correlation_id", default="")
_current_job_id = contextvars.ContextVar("jobtrail_job_id", default="")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

META_CORRELATION = "jobtrail_correlation_id"
META_PARENT = "jobtrail_parent_job_id"
META_ATTEMPT = "jobtrail_attempt"


def new_correlation_id():
    return uuid.uuid4().hex


def current_correlation_id():
    return _correlation_id.get()


@contextlib.contextmanager
def correlation(correlation_id=None, traceparent=None):
    """Jobs enqueued inside share this correlation ID (or the trace ID of a W3C traceparent)."""
    if not correlation_id and traceparent:
        match = _TRACEPARENT.match(traceparent.strip())
        correlation_id = match.group(1) if match and match.group(1) != "0" * 32 else None
    token = _correlation_id.set(correlation_id or new_correlation_id())
    try:
        yield _correlation_id.get()
    finally:
        _correlation_id.reset(token)


class Client:
    """Posts events to `jobtrail serve`. Thread-safe; never raises."""

    def __init__(self, url=None, token=None, timeout=2.0):
        self.url = (url or os.environ.get("JOBTRAIL_URL") or "http://127.0.0.1:8089").rstrip("/") + "/v1/events"
        self.token = token if token is not None else os.environ.get("JOBTRAIL_TOKEN", "")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self._suppressed = 0
        self._down_until = 0.0  # after a failed connection, skip posts until then

    def record(self, job_id, state, **fields):
        """Records one event; returns True if the server took it."""
        event = {"job_id": str(job_id), "state": state, "at": time.time_ns() // 1000,
                 "worker": "%s:%d" % (socket.gethostname(), os.getpid())}
        event.update({key: value for key, value in fields.items() if value not in (None, "", [])})
        return self.post([event])

    def post(self, events):
        # An unreachable server must not add a connect timeout to every enqueue of a web
        # request: after one failure, events are dropped (and counted) for a few seconds.
        if time.monotonic() < self._down_until:
            with self._lock:
                self._suppressed += 1
            return False
        # Always with `at`: the server recognises a re-sent event by it (see docs/events.md).
        now = time.time_ns() // 1000
        body = "".join(json.dumps(dict(event, at=event.get("at") or now)) + "\n" for event in events).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/x-ndjson"})
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return 200 <= response.status < 300
        except urllib.error.HTTPError as error:
            self._warn("jobtrail serve refused events: %s %s" % (error.code, error.read()[:300].decode(errors="replace")))
        except Exception as error:  # noqa: BLE001 - instrumentation must never break the job
            self._down_until = time.monotonic() + 10
            self._warn("cannot reach jobtrail serve at %s: %s" % (self.url, error))
        return False

    def _warn(self, message):
        # At most one line a minute, with a count: a dead server must not flood the worker's log.
        with self._lock:
            now = time.monotonic()
            if now - self._last_warning < 60 and self._last_warning:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_warning = self._suppressed, 0, now
        _log.warning("%s%s", message, " (%d more events lost since the last warning)" % suppressed if suppressed else "")


_default_client = None
_default_lock = threading.Lock()


def default_client():
    """The client made from JOBTRAIL_URL and JOBTRAIL_TOKEN, created on first use."""
    global _default_client
    with _default_lock:
        if _default_client is None:
            _default_client = Client()
        return _default_client


def _job_fields(job):
    return {"job": job.func_name, "queue": job.origin, "correlation_id": job.meta.get(META_CORRELATION),
            "parent_job_id": job.meta.get(META_PARENT)}


# The server's limits, in bytes of UTF-8: a longer field gets the whole event refused.
MAX_CLASS_BYTES = 200
MAX_MESSAGE_BYTES = 8 * 1024
MAX_BACKTRACE_BYTES = 64 * 1024


def _utf8_head(text, limit):
    """The start of ``text`` in at most ``limit`` bytes of UTF-8, cut between characters."""
    # "replace": a lone surrogate (from a surrogateescape'd file name) cannot be sent as JSON.
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def _utf8_tail(text, limit):
    """The end of ``text`` in at most ``limit`` bytes of UTF-8, cut between characters."""
    data = text.encode("utf-8", "replace")
    return data[max(len(data) - limit, 0):].decode("utf-8", "ignore")


def _error_fields(exc_string):
    # RQ hands over the formatted traceback; its last line reads "ValueError: card declined".
    lines = [line for line in (exc_string or "").strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    error_class, _, message = last.partition(": ")
    if not message and " " in error_class:
        error_class, message = "", last
    # The end of a message and of a traceback is where the cause is.
    return {"class": _utf8_head(error_class, MAX_CLASS_BYTES), "message": _utf8_tail(message, MAX_MESSAGE_BYTES),
            "backtrace": _utf8_tail(exc_string or "", MAX_BACKTRACE_BYTES)}


class TrackedQueue(rq.Queue):
    """An RQ queue that records each enqueue and stamps the correlation ID and parent job."""

    jobtrail_client = None  # None: default_client()

    def enqueue_job(self, job, pipeline=None, at_front=False):
        retrying = META_ATTEMPT in job.meta  # RQ re-enqueues a failed job through here
        if not retrying:
            job.meta.setdefault(META_CORRELATION, _correlation_id.get() or new_correlation_id())
            parent = _current_job_id.get()
            if parent and parent != job.id:
                job.meta.setdefault(META_PARENT, parent)
        result = super().enqueue_job(job, pipeline=pipeline, at_front=at_front)
        if not retrying:  # the worker records the retry's enqueue itself, with its attempt
            (self.jobtrail_client or default_client()).record(job.id, "enqueued", attempt=1, **_job_fields(job))
        return result


class TrackedWorker(rq.Worker):
    """An RQ worker that records start, success, failure, retry and giving up."""

    jobtrail_client = None  # None: default_client()

    def _jobtrail(self):
        return self.jobtrail_client or default_client()

    def perform_job(self, job, queue):
        attempt = int(job.meta.get(META_ATTEMPT, 0)) + 1
        job.meta[META_ATTEMPT] = attempt
        with contextlib.suppress(Exception):
            job.save_meta()
        self._jobtrail().record(job.id, "started", attempt=attempt, **_job_fields(job))
        # Jobs enqueued by this job inherit its correlation ID, with this job as their parent.
        correlation_token = _correlation_id.set(job.meta.get(META_CORRELATION) or new_correlation_id())
        job_token = _current_job_id.set(job.id)
        try:
            return super().perform_job(job, queue)
        finally:
            _current_job_id.reset(job_token)
            _correlation_id.reset(correlation_token)

    def handle_job_success(self, job, queue, started_job_registry):
        result = super().handle_job_success(job, queue, started_job_registry)
        self._jobtrail().record(job.id, "succeeded", attempt=int(job.meta.get(META_ATTEMPT, 1)), **_job_fields(job))
        return result

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        # The same test RQ makes (before it decrements retries_left), so the story matches RQ's.
        will_retry = bool(job.retries_left and job.retries_left > 0 and self._stopped_job_id != job.id)
        attempt = int(job.meta.get(META_ATTEMPT, 1))
        result = super().handle_job_failure(job, queue, started_job_registry=started_job_registry,
                                            exc_string=exc_string)
        fields = _job_fields(job)
        client = self._jobtrail()
        client.record(job.id, "failed", attempt=attempt, error=_error_fields(exc_string), **fields)
        if will_retry:
            client.record(job.id, "enqueued", attempt=attempt + 1, **fields)
        else:
            client.record(job.id, "dead", attempt=attempt, **fields)
        return result
