"""Report Celery tasks to `jobtrail serve` through Celery's signals (Celery 5.2, Debian's python3-celery).

    app = Celery("shop", broker="redis://127.0.0.1:6379/0")
    jobtrail_celery.install()            # in the module both the web app and the worker import

    with jobtrail_celery.correlation(traceparent=request.headers.get("traceparent")):
        send_welcome.delay(user.id)

Which events are reported, and when, is in contrib/python/README.md. The correlation ID and the
parent task travel in the message headers (`jobtrail_correlation_id`, `jobtrail_parent_job_id`);
without them Celery's own root_id and parent_id are used, so a task published by untracked code
inside a tracked one still joins the trace. Recording is buffered (jobtrail_client); prefork
children flush when they leave (worker_process_shutdown), durable tasks at their end.
"""

import contextlib
import os

from celery import signals

import jobtrail_client
from jobtrail_client import Client, correlation, current_correlation_id, new_correlation_id, tag, track
from jobtrail_client import context as _context
from jobtrail_client import error_from_exception

__all__ = ["Client", "correlation", "current_correlation_id", "install", "lifecycle", "tag", "track"]

HEADER_CORRELATION = "jobtrail_correlation_id"
HEADER_PARENT = "jobtrail_parent_job_id"

lifecycle = jobtrail_client.Lifecycle()


def _flush_timeout():
    try:
        return float(os.environ.get("JOBTRAIL_CHILD_FLUSH_TIMEOUT", "2"))
    except ValueError:
        return 2.0


_tasks = {}  # task name -> the registered task if it declares something (jobtrail.track), else None


def _task_function(name):
    """The registered task (for its jobtrail.track declaration), or None; looked up once per name."""
    try:
        return _tasks[name]
    except KeyError:
        pass
    task = None
    with contextlib.suppress(Exception):
        from celery import current_app
        task = current_app.tasks.get(name)
    if task is not None and _context.declaration_of(task) is None:
        task = None
    if len(_tasks) < 10000:
        _tasks[name] = task
    return task


def _request_value(request, name):
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


def _error_with_traceback(exc, einfo):
    return error_from_exception(exc, str(getattr(einfo, "traceback", "") or ""))


def _parent(parent_id, job_id):
    # A retry is published from inside the task itself: Celery names it its own parent.
    return parent_id if parent_id and parent_id != job_id else None


# -- the publisher (a web request, or a task enqueuing another) ------------------------------
def _before_publish(sender=None, body=None, headers=None, routing_key=None, **_):
    try:
        if headers is None or "id" not in headers:
            return  # protocol 1 messages carry no headers to ride in
        job_id = headers["id"]
        running = _context.running_job()
        if HEADER_CORRELATION not in headers:
            # Inside a task the current correlation ID is the task's (see Lifecycle.started).
            headers[HEADER_CORRELATION] = current_correlation_id() or new_correlation_id()
        if HEADER_PARENT not in headers and running is not None and running.job_id != job_id:
            headers[HEADER_PARENT] = running.job_id
        task = _task_function(sender or headers.get("task"))
        args, kwargs = (body[0], body[1]) if isinstance(body, (tuple, list)) and len(body) >= 2 else ((), {})
        lifecycle.enqueued(job_id, attempt=int(headers.get("retries") or 0) + 1,
                           durable=jobtrail_client.is_durable(task), job=headers.get("task"), queue=routing_key,
                           correlation_id=headers[HEADER_CORRELATION],
                           parent_job_id=_parent(headers.get(HEADER_PARENT) or headers.get("parent_id"), job_id),
                           entities=jobtrail_client.declared_entities(task, args, kwargs))
    except Exception:  # noqa: BLE001 - never fail a publish
        pass


# -- the worker (a prefork child, or the solo/threads pool's own process) ---------------------
_running = {}  # task id -> jobtrail_client RunningJob, for the signals after task_prerun


def _prerun(task_id=None, task=None, args=None, kwargs=None, **_):
    try:
        request = task.request
        correlation_id = _request_value(request, HEADER_CORRELATION) or request.root_id or task_id
        declared = _task_function(task.name)
        _running[task_id] = lifecycle.started(
            task_id, int(request.retries or 0) + 1, durable=declared is not None and jobtrail_client.is_durable(declared),
            job=task.name, queue=(request.delivery_info or {}).get("routing_key"), correlation_id=correlation_id,
            parent_job_id=_parent(_request_value(request, HEADER_PARENT) or request.parent_id, task_id),
            entities=jobtrail_client.declared_entities(declared, args, kwargs) if declared is not None else [])
    except Exception:  # noqa: BLE001
        pass


def _success(sender=None, **_):
    with contextlib.suppress(Exception):
        lifecycle.finished(_running.get(sender.request.id), "succeeded")


def _retry(sender=None, request=None, reason=None, einfo=None, **_):
    # The retry's message was published just before (before_task_publish reported its enqueue).
    with contextlib.suppress(Exception):
        cause = getattr(reason, "exc", None) or reason  # celery.exceptions.Retry wraps the cause
        error = _error_with_traceback(cause, einfo) if isinstance(cause, BaseException) else {"message": str(cause)}
        lifecycle.finished(_running.get(request.id), "failed", error=error)


def _failure(sender=None, task_id=None, exception=None, einfo=None, **_):
    # Celery gives up: no retry was asked for, or max_retries is spent.
    with contextlib.suppress(Exception):
        running = _running.get(task_id)
        error = _error_with_traceback(exception, einfo)
        if running is None:  # e.g. a hard time limit, reported by the main process
            lifecycle.record(task_id, "failed", error=error, job=getattr(sender, "name", None))
            lifecycle.record(task_id, "dead", error=error, job=getattr(sender, "name", None))
            return
        lifecycle.finished(running, "failed", error=error)
        lifecycle.record(task_id, "dead", attempt=running.attempt, durable=running.durable, error=error,
                         entities=running.entities(), **running.fields)


def _postrun(task_id=None, **_):
    with contextlib.suppress(Exception):
        running = _running.pop(task_id, None)
        lifecycle.abandon(running)
        if running is not None and running.durable:
            lifecycle.client.flush(_flush_timeout())


def _revoked(request=None, terminated=None, signum=None, expired=None, **_):
    with contextlib.suppress(Exception):
        reason = "expired" if expired else "terminated by signal %s" % signum if terminated else "revoked"
        lifecycle.record(request.id, "cancelled", attempt=int(getattr(request, "retries", 0) or 0) + 1,
                         job=getattr(request, "task", None) or getattr(request, "name", None),
                         error={"class": "celery.exceptions.TaskRevokedError", "message": reason})


def _unknown(name=None, id=None, exc=None, **_):  # noqa: A002 - Celery's argument name
    with contextlib.suppress(Exception):
        lifecycle.record(id, "dead", job=name, error={"class": "celery.exceptions.NotRegistered",
                                                      "message": "no task named %r in this worker" % name})


def _rejected(message=None, exc=None, **_):
    with contextlib.suppress(Exception):
        headers = getattr(message, "headers", None) or {}
        if headers.get("id"):
            lifecycle.record(headers["id"], "dead", job=headers.get("task"),
                             error={"message": "message rejected by the worker: %s" % exc})


def _flush(**_):
    lifecycle.client.flush(_flush_timeout())


_installed = False


def install(client=None, heartbeat_interval=None):
    """Connects the signal handlers (once per process). ``client``: a jobtrail_client.Client to use
    instead of the one made from $JOBTRAIL_URL; ``heartbeat_interval`` in seconds (default
    $JOBTRAIL_HEARTBEAT_INTERVAL or 30)."""
    global _installed, lifecycle
    if client is not None or heartbeat_interval is not None:
        lifecycle = jobtrail_client.Lifecycle(client, heartbeat_interval)
    if _installed:
        return
    _installed = True
    for signal, handler in ((signals.before_task_publish, _before_publish), (signals.task_prerun, _prerun),
                            (signals.task_success, _success), (signals.task_retry, _retry),
                            (signals.task_failure, _failure), (signals.task_postrun, _postrun),
                            (signals.task_revoked, _revoked), (signals.task_unknown, _unknown),
                            (signals.task_rejected, _rejected), (signals.worker_process_shutdown, _flush),
                            (signals.worker_shutdown, _flush)):
        signal.connect(handler, weak=False)
