"""Report RQ jobs to `jobtrail serve` (RQ 1.13, Debian's python3-rq).

    from jobtrail_rq import TrackedQueue, correlation
    with correlation(traceparent=request.headers.get("traceparent")):      # in the web request
        TrackedQueue("default", connection=redis).enqueue(send_welcome, user.id)

    rq worker --worker-class jobtrail_rq.TrackedWorker --queue-class jobtrail_rq.TrackedQueue \
              --job-class jobtrail_rq.TrackedJob --with-scheduler

Which events are reported, and when, is in contrib/python/README.md. The correlation ID, the
parent job and the attempt travel in ``job.meta``, so jobs enqueued inside a job, delayed jobs
and retries stay in the request's trace. Recording is buffered (jobtrail_client): an enqueue
pays a few microseconds; RQ's work horse, which leaves with os._exit, flushes at the end of
each job, waiting at most $JOBTRAIL_HORSE_FLUSH_TIMEOUT seconds (default 2).
"""

import contextlib
import json
import os
import threading

import rq
import rq.defaults
import rq.job
import rq.scheduler
import rq.utils
from rq.job import JobStatus

import jobtrail_client
from jobtrail_client import (Client, correlation, current_correlation_id, error_from_traceback, new_correlation_id,
                             tag, track)
from jobtrail_client import context as _context

__all__ = ["Client", "TrackedJob", "TrackedQueue", "TrackedScheduler", "TrackedWorker", "cancel_job", "correlation",
           "current_correlation_id", "default_client", "lifecycle", "tag", "track"]

META_CORRELATION = "jobtrail_correlation_id"
META_PARENT = "jobtrail_parent_job_id"
META_ATTEMPT = "jobtrail_attempt"  # the attempt that last started
SPOOL_KEY = "jobtrail:spool"  # events a work horse could not send, for its worker to send

lifecycle = jobtrail_client.Lifecycle()  # set lifecycle = jobtrail_client.Lifecycle(Client(...)) to configure in code
default_client = jobtrail_client.default_client


def _horse_flush_timeout():
    try:
        return float(os.environ.get("JOBTRAIL_HORSE_FLUSH_TIMEOUT", "2"))
    except ValueError:
        return 2.0


def _func_of(job):
    with contextlib.suppress(Exception):
        return job.func
    return None


def _fields(job):
    return {"job": job.func_name, "queue": job.origin, "correlation_id": job.meta.get(META_CORRELATION),
            "parent_job_id": job.meta.get(META_PARENT)}


def _stamp(job):
    """Puts the request's correlation ID and the running job (the parent) in job.meta."""
    if META_CORRELATION not in job.meta:
        job.meta[META_CORRELATION] = current_correlation_id() or new_correlation_id()
        parent = _context.running_job()
        if parent is not None and parent.job_id != job.id:
            job.meta[META_PARENT] = parent.job_id


_declarations = {}  # func_name -> the function (for its jobtrail.track declaration), or None


def _declared(job):
    """(durable, entities) that the job's function declares; the function looked up once per name."""
    name = job.func_name
    if name not in _declarations:
        if len(_declarations) > 10000:
            _declarations.clear()
        func = _func_of(job)
        _declarations[name] = func if _context.declaration_of(func) is not None else None
    func = _declarations[name]
    if func is None:
        return False, []
    return jobtrail_client.is_durable(func), jobtrail_client.declared_entities(func, job.args, job.kwargs)


def _report_enqueue(job):
    durable, entities = _declared(job)
    lifecycle.enqueued(job.id, attempt=int(job.meta.get(META_ATTEMPT, 0)) + 1, durable=durable, entities=entities,
                       **_fields(job))


class TrackedJob(rq.job.Job):
    """An RQ job whose cancel() is reported as `cancelled`."""

    def cancel(self, pipeline=None, enqueue_dependents=False):
        result = super().cancel(pipeline=pipeline, enqueue_dependents=enqueue_dependents)
        lifecycle.record(self.id, "cancelled", attempt=max(1, int(self.meta.get(META_ATTEMPT, 1))),
                         error={"message": "cancelled"}, **_fields(self))
        return result


def cancel_job(job_id, connection):
    """Cancels a queued job and reports it (rq.cancel_job would not)."""
    TrackedJob.fetch(job_id, connection=connection).cancel()


class TrackedQueue(rq.Queue):
    """An RQ queue that records each enqueue (immediate, delayed, deferred, moved by the
    scheduler) and stamps the correlation ID and parent job in job.meta."""

    job_class = TrackedJob

    def create_job(self, *args, **kwargs):
        # Every way in (enqueue, enqueue_call, enqueue_at/in, enqueue_many, depends_on) makes
        # the job here, in the caller's context: stamp it before RQ saves it.
        job = super().create_job(*args, **kwargs)
        _stamp(job)
        return job

    def schedule_job(self, job, datetime, pipeline=None):
        retrying = META_ATTEMPT in job.meta  # a Retry with an interval: the worker reports it
        _stamp(job)
        result = super().schedule_job(job, datetime, pipeline=pipeline)
        if not retrying:
            _report_enqueue(job)  # reported when scheduled, and again when moved to the queue
        return result

    def enqueue_job(self, job, pipeline=None, at_front=False):
        # The scheduler moves a due job here (its status still "scheduled"): reported, so the
        # trace shows when it entered the queue. A plain retry is reported by the worker.
        moved_from_schedule = job.get_status(refresh=False) == JobStatus.SCHEDULED
        retrying = META_ATTEMPT in job.meta and not moved_from_schedule
        _stamp(job)
        result = super().enqueue_job(job, pipeline=pipeline, at_front=at_front)
        if not retrying:
            _report_enqueue(job)
        return result


class TrackedScheduler(rq.scheduler.RQScheduler):
    """RQ's scheduler, moving due jobs through TrackedQueue so that the move is reported. It
    runs in a process of its own that leaves without atexit: stop() flushes."""

    queue_class = TrackedQueue

    def enqueue_scheduled_jobs(self):
        self._status = self.Status.WORKING
        if not self._scheduled_job_registries and self._acquired_locks:
            self.prepare_registries()
        for registry in self._scheduled_job_registries:
            job_ids = registry.get_jobs_to_schedule(rq.utils.current_timestamp())
            if not job_ids:
                continue
            queue = self.queue_class(registry.name, connection=self.connection, serializer=self.serializer)
            with self.connection.pipeline() as pipeline:
                for job in TrackedJob.fetch_many(job_ids, connection=self.connection, serializer=self.serializer):
                    if job is not None:
                        queue.enqueue_job(job, pipeline=pipeline, at_front=bool(job.enqueue_at_front))
                        registry.remove(job, pipeline=pipeline)
                pipeline.execute()
        self._status = self.Status.STARTED

    def stop(self):
        # The scheduler's process leaves without atexit (multiprocessing): send what is left.
        lifecycle.client.flush(_horse_flush_timeout())
        super().stop()


class TrackedWorker(rq.Worker):
    """An RQ worker that records each attempt's start, heartbeats while it runs, and its end:
    succeeded, failed (with the exception, a timeout included), the retry's enqueue, dead when
    RQ gives up, cancelled when the job is stopped."""

    queue_class = TrackedQueue
    job_class = TrackedJob

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=rq.defaults.DEFAULT_LOGGING_DATE_FORMAT,
                         log_format=rq.defaults.DEFAULT_LOGGING_FORMAT):
        self.scheduler = TrackedScheduler(self.queues, connection=self.connection, logging_level=logging_level,
                                          date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                self.scheduler.enqueue_scheduled_jobs()
                self.scheduler.release_locks()
            else:
                self.scheduler.start()

    def perform_job(self, job, queue):
        # In the work horse (or in the worker itself with SimpleWorker).
        attempt = int(job.meta.get(META_ATTEMPT, 0)) + 1
        job.meta[META_ATTEMPT] = attempt
        _stamp(job)
        if job.retries_left:  # the next attempt reads it (the worker's copy of meta knows this one)
            with contextlib.suppress(Exception):
                job.save_meta()
        if getattr(self, "_is_horse", False) and getattr(self, "_jobtrail_pipe", None):
            lifecycle.client.forward_to(self._jobtrail_pipe[1])  # the worker sends for the horse
        durable, entities = _declared(job)
        self._jobtrail_job = lifecycle.started(job.id, attempt, durable=durable, entities=entities, **_fields(job))
        try:
            return super().perform_job(job, queue)
        finally:
            # Whatever ended the job: no heartbeat after it, and not left as the running one.
            lifecycle.abandon(self._jobtrail_job)
            self._jobtrail_job = None
            # The horse leaves with os._exit: atexit would not run. What cannot be sent in time
            # (serve down or restarting) goes to its worker through Redis, to be sent from there.
            self._jobtrail_hand_over(job.connection)

    def _jobtrail_hand_over(self, connection):
        if not getattr(self, "_is_horse", False):
            return  # a worker without a horse (SimpleWorker) lives on and sends in the background
        with contextlib.suppress(Exception):
            left = lifecycle.client.drain(_horse_flush_timeout())
            if left:
                connection.rpush(SPOOL_KEY + ":" + self.name, *(json.dumps(event) for event in left))

    def _jobtrail_start_pipe(self):
        """The pipe the work horses write their events to, and the thread that reads it and
        sends them over this worker's one keep-alive connection: a horse then pays a pipe
        write per event and leaves with nothing to flush."""
        if getattr(self, "_jobtrail_pipe", None) and self._jobtrail_pipe_pid == os.getpid():
            return
        self._jobtrail_pipe = os.pipe()
        self._jobtrail_pipe_pid = os.getpid()
        client = lifecycle.client
        read_fd = self._jobtrail_pipe[0]

        def read_forever():
            pending = b""
            while True:
                try:
                    chunk = os.read(read_fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                events = []
                for line in lines:
                    with contextlib.suppress(ValueError):
                        events.append(json.loads(line))
                client.adopt(events)

        threading.Thread(target=read_forever, name="jobtrail-horse-pipe", daemon=True).start()

    def execute_job(self, job, queue):
        with contextlib.suppress(Exception):
            self._jobtrail_start_pipe()
        super().execute_job(job, queue)
        # Back in the worker: send what the horse handed over.
        with contextlib.suppress(Exception):
            key = SPOOL_KEY + ":" + self.name
            with self.connection.pipeline() as pipeline:
                pipeline.lrange(key, 0, -1)
                pipeline.delete(key)
                handed, _ = pipeline.execute()
            if handed:
                lifecycle.client.adopt(json.loads(item) for item in handed)

    def handle_job_success(self, job, queue, started_job_registry):
        result = super().handle_job_success(job, queue, started_job_registry)
        lifecycle.finished(getattr(self, "_jobtrail_job", None), "succeeded")
        return result

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        # The same test RQ makes (before it decrements retries_left), so the story matches RQ's.
        stopped = self._stopped_job_id == job.id
        will_retry = bool(job.retries_left and job.retries_left > 0 and not stopped)
        result = super().handle_job_failure(job, queue, started_job_registry=started_job_registry,
                                            exc_string=exc_string)
        running = getattr(self, "_jobtrail_job", None)
        if running is None:
            # In the worker, not the horse: the horse was killed (a hard timeout, OOM, a stop
            # command). The worker's copy of the job is as it was dequeued: the horse's attempt
            # is one more than what its meta says.
            attempt = int(job.meta.get(META_ATTEMPT, 0)) + 1
            fields = _fields(job)
            error = error_from_traceback(exc_string)
            if stopped:
                lifecycle.record(job.id, "cancelled", attempt=attempt, error=error, **fields)
            else:
                lifecycle.record(job.id, "failed", attempt=attempt, error=error, **fields)
                if will_retry:
                    lifecycle.record(job.id, "enqueued", attempt=attempt + 1, **fields)
                else:
                    lifecycle.record(job.id, "dead", attempt=attempt, error=error, **fields)
            return result
        error = error_from_traceback(exc_string)
        lifecycle.finished(running, "failed", error=error, next_attempt=will_retry)
        if not will_retry:  # RQ gives up: the last attempt's error is the job's
            lifecycle.record(job.id, "dead", attempt=running.attempt, durable=running.durable, error=error,
                             entities=running.entities(), **running.fields)
        self._jobtrail_job = None
        return result
