"""The lifecycle of one job as the worker integrations report it, in one place:
enqueued → started (heartbeats while it runs, entities tagged) → succeeded | failed | dead | cancelled.

Thread-safe (the client and the heartbeat ticker are).
"""

from . import context
from .client import default_client
from .heartbeat import Heartbeats


class Lifecycle:
    def __init__(self, client=None, heartbeat_interval=None):
        self._client = client
        self._heartbeat_interval = heartbeat_interval
        self._heartbeats = None

    @property
    def client(self):
        return self._client or default_client()

    def _ticker(self):
        if self._heartbeats is None:
            self._heartbeats = Heartbeats(self.client, self._heartbeat_interval)
        return self._heartbeats

    def enqueued(self, job_id, attempt=1, durable=False, **fields):
        return self.client.record(job_id, "enqueued", attempt=attempt, durable=durable, **fields)

    def started(self, job_id, attempt, durable=False, entities=(), heartbeat=True, **fields):
        """Records the start, makes the job the running one (for tag() and for jobs it enqueues)
        and heartbeats for it (unless ``heartbeat`` is False: another process does, see
        beat_for()); returns the handle finished() takes."""
        job = context.RunningJob(job_id, attempt, fields.get("correlation_id") or context.new_correlation_id(),
                                 {key: value for key, value in fields.items() if value}, entities)
        job.fields["correlation_id"] = job.correlation_id
        job.durable = durable
        job.done = False
        self.client.record(job_id, "started", attempt=attempt, durable=durable, entities=job.entities(),
                           **job.fields)
        job.tokens = context.enter_job(job)
        if heartbeat:
            self._ticker().start(job)
        return job

    def beat_for(self, job):
        """Heartbeats, from this process, for a job another process runs (``job``: job_id,
        attempt, fields, entities() and optionally alive(), which False skips a beat); until
        stop_beating(job)."""
        self._ticker().start(job)

    def stop_beating(self, job):
        if job is not None and self._heartbeats is not None:
            self._heartbeats.stop(job)

    def finished(self, job, state, error=None, next_attempt=False):
        """Records the end of the running ``job``'s attempt (and, with next_attempt, the retry's
        enqueue); stops its heartbeats and leaves its context."""
        if job is None or job.done:
            return
        job.done = True
        self.stop_beating(job)
        self.client.record(job.job_id, state, attempt=job.attempt, durable=job.durable, error=error,
                           entities=job.entities(), **job.fields)
        if next_attempt:
            self.client.record(job.job_id, "enqueued", attempt=job.attempt + 1, durable=job.durable, **job.fields)
        if getattr(job, "tokens", None):
            context.leave_job(job.tokens)
            job.tokens = None

    def abandon(self, job):
        """Ends what started() began (heartbeats, the job's context) without recording an end:
        for a job whose end is not known here, or was already recorded by finished()."""
        if job is None:
            return
        job.done = True
        self.stop_beating(job)
        if getattr(job, "tokens", None):
            context.leave_job(job.tokens)
            job.tokens = None

    def record(self, job_id, state, **fields):
        return self.client.record(job_id, state, **fields)
