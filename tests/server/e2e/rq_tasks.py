"""RQ jobs of the end-to-end tests: one enqueues a child, one fails once then succeeds, one dies,
one is delayed, one times out; and the long jobs of the heartbeat test."""

import os
import signal
import time
from datetime import timedelta

import rq
from rq import Retry

import jobtrail_rq
from jobtrail_rq import TrackedQueue


@jobtrail_rq.track(entities=lambda user_id: ["user:%s" % user_id])
def send_welcome(user_id):
    job = rq.get_current_job()
    # Enqueued from inside a job: joins the trace with this job as its parent.
    TrackedQueue("default", connection=job.connection).enqueue(audit_signup, user_id)
    return "sent to %s" % user_id


def audit_signup(user_id):
    return "audited %s" % user_id


def charge(card):
    job = rq.get_current_job()
    if job.connection.incr("attempts:" + job.id) == 1:
        raise ConnectionError("payment gateway timed out")
    return "charged %s" % card


def explode():
    raise ValueError("this job always fails")


def remind(user_id):
    return "reminded %s" % user_id


def slow():
    time.sleep(30)


def long_healthy(seconds, user_id):
    """Runs past the stuck deadline, heartbeating; tags what it touched from inside."""
    jobtrail_rq.tag("user:%s" % user_id)
    time.sleep(seconds)


def hangs():
    """Hangs after a second of work: its whole process frozen (as in a stuck syscall), heartbeats included."""
    time.sleep(1.2)  # its start and first heartbeats are sent
    rq.get_current_job().connection.rpush("hung_pids", os.getpid())
    os.kill(os.getpid(), signal.SIGSTOP)


def noop(n):
    return n


def fails_long(n):
    """Fails with a message too long for the pipe a work horse writes its events to: the horse
    sends those itself and, when serve is down, hands them to its worker through Redis."""
    raise RuntimeError("failure %d: %s" % (n, "x" * 6000))


def web_request(connection, correlation_id):
    """What a web request does: enqueue under the request's correlation ID."""
    queue = TrackedQueue("default", connection=connection)
    with jobtrail_rq.correlation(correlation_id):
        queue.enqueue(send_welcome, 42, job_id="rq-welcome")
        queue.enqueue(charge, "4242", job_id="rq-charge", retry=Retry(max=2))
        queue.enqueue(explode, job_id="rq-explode")
        queue.enqueue_in(timedelta(seconds=1), remind, 42, job_id="rq-remind")  # through RQ's scheduler
        queue.enqueue(slow, job_id="rq-slow", job_timeout=1)
        queue.enqueue_in(timedelta(seconds=60), remind, 43, job_id="rq-cancelled")
    jobtrail_rq.TrackedJob.fetch("rq-cancelled", connection=connection).cancel()  # an operator changes their mind
    jobtrail_rq.default_client().flush(5)


def sleeps(seconds):
    time.sleep(seconds)


def lifecycle_request(connection, correlation_id):
    """The lifecycles e2e_workers_lifecycle.sh checks: enqueue_many, a depends_on chain, and a
    job long enough to be stopped with send_stop_job_command."""
    queue = TrackedQueue("default", connection=connection)
    with jobtrail_rq.correlation(correlation_id):
        queue.enqueue_many([TrackedQueue.prepare_data(noop, (1,), job_id="rq-many-1"),
                            TrackedQueue.prepare_data(noop, (2,), job_id="rq-many-2")])
        first = queue.enqueue(sleeps, 1, job_id="rq-dep-first")
        queue.enqueue(noop, 3, job_id="rq-dep-then", depends_on=first)
        queue.enqueue(sleeps, 60, job_id="rq-stopped", job_timeout=120)
    jobtrail_rq.default_client().flush(5)
