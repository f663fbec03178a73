"""What the running code is part of: the request's correlation ID, the running job (its ID,
attempt and the entities tagged so far), and what each job function declares.

Everything here lives in contextvars, so it is per thread and per asyncio task.
"""

import contextlib
import contextvars
import logging
import os
import re
import threading

from . import fields

_log = logging.getLogger("jobtrail")
_correlation_id = contextvars.ContextVar("jobtrail_correlation_id", default="")
_running_job = contextvars.ContextVar("jobtrail_running_job", default=None)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_correlation_id():
    return os.urandom(16).hex()  # as random as uuid4().hex, a third of the time


def correlation_from_traceparent(traceparent):
    """The trace ID of a W3C traceparent, or None if it is not a valid one."""
    match = _TRACEPARENT.match((traceparent or "").strip())
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def current_correlation_id():
    return _correlation_id.get()


@contextlib.contextmanager
def correlation(correlation_id=None, traceparent=None):
    """Jobs enqueued inside share this correlation ID (or the trace ID of a W3C traceparent;
    a new one if neither is given)."""
    correlation_id = correlation_id or correlation_from_traceparent(traceparent) or new_correlation_id()
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)


class RunningJob:
    """The job this thread runs. Thread-safe: tag() may be called from threads the job starts,
    while the heartbeat ticker reads the entities."""

    def __init__(self, job_id, attempt, correlation_id, fields_=None, entities=()):
        self.job_id, self.attempt, self.correlation_id = job_id, attempt, correlation_id
        self.fields = fields_ or {}
        self._lock = threading.Lock()
        self._entities = fields.clean_entities(entities)
        # Called after tag(): where the heartbeats are sent by another process (RQ's worker
        # for its work horse), the new entities must be told now, not at the next beat.
        self.on_tag = None

    def tag(self, *entities):
        with self._lock:
            self._entities = fields.clean_entities(self._entities + [str(e) for e in entities])
        if self.on_tag is not None:
            self.on_tag(self)

    def entities(self):
        with self._lock:
            return list(self._entities)


def running_job():
    return _running_job.get()


def enter_job(job):
    """Makes ``job`` the running job of this context (and its correlation ID the current one)."""
    return _running_job.set(job), _correlation_id.set(job.correlation_id)


def leave_job(tokens):
    job_token, correlation_token = tokens
    with contextlib.suppress(ValueError):  # a token from another context: just clear
        _running_job.reset(job_token)
        _correlation_id.reset(correlation_token)
        return
    _running_job.set(None)
    _correlation_id.set("")


def tag(*entities):
    """Tags the running job with business objects, e.g. ``tag("user:42", "invoice:7")``; sent
    with its next heartbeat and its end. Outside a job it does nothing and returns False."""
    job = _running_job.get()
    if job is None:
        return False
    job.tag(*entities)
    return True


class Declaration:
    """How a job function's events are reported: entities from its arguments, durability."""

    def __init__(self, entities=None, durable=False):
        self.entities, self.durable = entities, durable


def track(entities=None, durable=False):
    """Declares, on a job function, how its entities come from its arguments and whether its
    events must be committed before the job is acknowledged::

        @jobtrail.track(entities=lambda user_id, *_, **__: ["user:%s" % user_id], durable=True)
        def charge(user_id, amount): ...
    """
    def declare(func):
        func.__jobtrail__ = Declaration(entities, durable)
        return func
    return declare


def declaration_of(func):
    return getattr(func, "__jobtrail__", None) or getattr(getattr(func, "run", None), "__jobtrail__", None)


def declared_entities(func, args, kwargs):
    """The entities ``func`` declares for these arguments; [] if none, or if the declaration fails."""
    declaration = declaration_of(func)
    if declaration is None or declaration.entities is None:
        return []
    try:
        return fields.clean_entities(declaration.entities(*(args or ()), **(kwargs or {})))
    except Exception as error:  # noqa: BLE001 - a bad declaration must not fail the enqueue
        _log.debug("jobtrail: entities of %r failed: %r", func, error)
        return []


def is_durable(func):
    declaration = declaration_of(func)
    return bool(declaration and declaration.durable)
