"""Report RQ jobs to `jobtrail serve` (RQ 1.13, Debian's python3-rq).

    from jobtrail_rq import TrackedQueue, correlation
    with correlation(traceparent=request.headers.get("traceparent")):      # in the web request
        TrackedQueue("default", connection=redis).enqueue(send_welcome, user.id)

    rq worker --worker-class jobtrail_rq.TrackedWorker --queue-class jobtrail_rq.TrackedQueue \
              --job-class jobtrail_rq.TrackedJob --with-scheduler

Which events are reported, and when, is in contrib/python/README.md. The correlation ID, the
parent job and the attempt travel in ``job.meta``, so jobs enqueued inside a job, delayed jobs
and retries stay in the request's trace. Recording is buffered (jobtrail_client): an enqueue
pays a few microseconds. RQ's work horse, which leaves with os._exit, writes its events down a
pipe to its worker, which sends them; an event too big for the pipe the horse sends itself at
the end of the job, waiting at most $JOBTRAIL_HORSE_FLUSH_TIMEOUT seconds (default 2), and hands
what it could not send to its worker through Redis.
"""

import contextlib
import json
import os
import threading
import time

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
SPOOLED_MARK = "jobtrail_spooled"  # the pipe line a horse writes after it has spooled
SPOOL_RECHECK_S = 10.0
PIPE_POLL_S = 0.25  # how soon a long job's `started` is sent (a short job's goes at its end)

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


ENDS_ATTEMPT = ("succeeded", "failed", "dead", "cancelled")


def _tell_tags(running):
    # In a horse whose worker heartbeats for it: the new entities go now, as a heartbeat.
    lifecycle.record(running.job_id, "heartbeat", attempt=running.attempt, entities=running.entities(),
                     **running.fields)


def _process_runs(pid):
    """False if the process is gone or stopped (SIGSTOP, a debugger): it gives no sign of life."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"T", b"t", b"Z", b"X")
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return False
    except (OSError, IndexError):
        pass
    try:  # no /proc: only whether it exists
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class _HorseJob(_context.RunningJob):
    """The job a work horse runs, as its worker heartbeats for it: the fields and entities of
    the horse's `started` (what the horse tags later goes at once, as a heartbeat of its own,
    and the store keeps every entity a job was ever tagged with). Alive while that horse is the
    worker's current one and neither stopped nor gone, so a frozen horse sends no heartbeat and
    its job turns stuck.
    (A horse spinning with the GIL held, which a thread inside it could not beat for either, or
    deadlocked with it released, which such a thread would beat for, still looks alive.)"""

    def __init__(self, event, worker, horse_pid):
        fields = {key: event[key] for key in ("job", "queue", "correlation_id", "parent_job_id", "worker")
                  if event.get(key)}
        super().__init__(event["job_id"], event.get("attempt", 1), fields.get("correlation_id"), fields,
                         event.get("entities") or [])
        self._worker, self._horse_pid = worker, horse_pid

    def alive(self):
        return bool(self._horse_pid) and self._worker._horse_pid == self._horse_pid and _process_runs(self._horse_pid)


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
        # A horse that writes to its worker is heartbeated by its worker (_jobtrail_follow_horse): a
        # thread of its own would cost each job about half a millisecond of CPU to start and
        # end, a tenth of a trivial job. What it tags is told at once, as a heartbeat.
        by_worker = lifecycle.client.forwarding()
        self._jobtrail_job = lifecycle.started(job.id, attempt, durable=durable, entities=entities,
                                               heartbeat=not by_worker, **_fields(job))
        if by_worker:
            self._jobtrail_job.on_tag = _tell_tags
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
                connection.rpush(self._jobtrail_spool_key(), *(json.dumps(event) for event in left))
                # Tell the worker down the pipe, after the events, so that it reads the spool
                # only when there is something in it, not after every job.
                pipe = getattr(self, "_jobtrail_pipe", None)
                if pipe:
                    os.write(pipe[1], (json.dumps({SPOOLED_MARK: True}) + "\n").encode())

    def _jobtrail_spool_key(self):
        return SPOOL_KEY + ":" + self.name

    def _jobtrail_adopt_spool(self):
        """Sends what the horses handed over through Redis."""
        self._jobtrail_spool_read_at = time.monotonic()
        with self.connection.pipeline() as pipeline:
            pipeline.lrange(self._jobtrail_spool_key(), 0, -1)
            pipeline.delete(self._jobtrail_spool_key())
            handed, _ = pipeline.execute()
        if handed:
            lifecycle.client.adopt(json.loads(item) for item in handed)

    def _jobtrail_start_pipe(self):
        """The pipe the work horses write their events to, read by this worker, which sends
        them over its one keep-alive connection: a horse then pays a pipe write per event and
        leaves with nothing to flush. The worker reads the pipe after each job and, for the
        jobs that run longer, every PIPE_POLL_S from a thread; a thread woken by every line
        instead cost each job a quarter of a millisecond of CPU, measured."""
        if getattr(self, "_jobtrail_pipe", None) and self._jobtrail_pipe_pid == os.getpid():
            return
        self._jobtrail_pipe = os.pipe()
        self._jobtrail_pipe_pid = os.getpid()
        self._jobtrail_pipe_lock = threading.Lock()
        self._jobtrail_pending = b""
        os.set_blocking(self._jobtrail_pipe[0], False)

        def poll_forever():
            while True:
                time.sleep(PIPE_POLL_S)
                with contextlib.suppress(Exception):
                    self._jobtrail_read_pipe()

        threading.Thread(target=poll_forever, name="jobtrail-horse-pipe", daemon=True).start()

    def _jobtrail_read_pipe(self):
        """Sends what the horses wrote down the pipe so far, without waiting for more."""
        pipe = getattr(self, "_jobtrail_pipe", None)
        if not pipe or self._jobtrail_pipe_pid != os.getpid():
            return
        with self._jobtrail_pipe_lock:  # one reader at a time: a line may span two reads
            chunks = []
            while True:
                try:
                    chunk = os.read(pipe[0], 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            if not chunks:
                return
            lines = (self._jobtrail_pending + b"".join(chunks)).split(b"\n")
            self._jobtrail_pending = lines.pop()
            events = []
            spooled = False
            for line in lines:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and SPOOLED_MARK in event:
                        spooled = True
                    else:
                        events.append(event)
            lifecycle.client.adopt(events)
            for event in events:
                with contextlib.suppress(Exception):
                    self._jobtrail_follow_horse(event)
        if spooled:
            with contextlib.suppress(Exception):
                self._jobtrail_adopt_spool()

    def _jobtrail_follow_horse(self, event):
        """Heartbeats for the job the horse says it started, until it says it ended or the
        horse is gone (execute_job)."""
        if not isinstance(event, dict):
            return
        beating = self.__dict__.setdefault("_jobtrail_beating", {})
        job_id, state = event.get("job_id"), event.get("state")
        if state == "started":
            beat = _HorseJob(event, self, self._horse_pid)
            lifecycle.stop_beating(beating.pop(job_id, None))
            beating[job_id] = beat
            lifecycle.beat_for(beat)
        elif state in ENDS_ATTEMPT:
            lifecycle.stop_beating(beating.pop(job_id, None))

    def _jobtrail_stop_beating(self):
        beating = self.__dict__.get("_jobtrail_beating", {})
        for job_id in list(beating):
            lifecycle.stop_beating(beating.pop(job_id, None))

    def execute_job(self, job, queue):
        with contextlib.suppress(Exception):
            self._jobtrail_start_pipe()
        try:
            super().execute_job(job, queue)
        finally:
            with contextlib.suppress(Exception):
                self._jobtrail_read_pipe()  # what the horse said, before it is forgotten
            with contextlib.suppress(Exception):
                self._jobtrail_stop_beating()  # the horse is gone, whatever it said
        # A horse that spooled says so down the pipe (_jobtrail_read_pipe then sends it);
        # reading Redis after every job would cost each job a round trip on the worker's main
        # thread (100 to 130 µs measured here). Read it here only without a pipe, or in case a
        # horse's word was lost (a full pipe), at most every SPOOL_RECHECK_S.
        with contextlib.suppress(Exception):
            since = time.monotonic() - getattr(self, "_jobtrail_spool_read_at", 0.0)
            if not getattr(self, "_jobtrail_pipe", None) or since > SPOOL_RECHECK_S:
                self._jobtrail_adopt_spool()

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
