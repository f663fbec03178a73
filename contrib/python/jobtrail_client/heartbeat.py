"""One ticker thread per process that sends a heartbeat for every running job.

The default interval is 30 s ($JOBTRAIL_HEARTBEAT_INTERVAL): 120 times below the built-in
stuck deadline (1 h), so a job is "stuck" only after it missed over a hundred heartbeats, and
still short enough for per-job deadlines of a few minutes; it costs one small event per
running job every 30 s.
"""

import os
import threading

DEFAULT_INTERVAL_S = 30.0


def interval_from_env():
    try:
        value = float(os.environ.get("JOBTRAIL_HEARTBEAT_INTERVAL", DEFAULT_INTERVAL_S))
        return value if value > 0 else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


class Heartbeats:
    """Thread-safe. start()/stop() around a job; the ticker records `heartbeat` events through
    ``client`` for each job between them. Fork-safe: a forked child starts with no jobs and its
    own ticker."""

    def __init__(self, client, interval=None):
        self.client = client
        self.interval = interval or interval_from_env()
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._jobs = {}
        self._wake = threading.Event()
        self._thread = None

    def start(self, job):
        """Heartbeats for ``job`` (a context.RunningJob) until stop(job)."""
        with self._lock:
            if self._pid != os.getpid():
                self._reset()
            self._jobs[id(job)] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="jobtrail-heartbeat", daemon=True)
                self._thread.start()

    def stop(self, job):
        with self._lock:
            self._jobs.pop(id(job), None)

    def _run(self):
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                alive = getattr(job, "alive", None)
                if alive is not None and not alive():
                    continue  # run by a process that is stopped or gone: no sign of life
                self.client.record(job.job_id, "heartbeat", attempt=job.attempt, entities=job.entities(),
                                   **job.fields)
