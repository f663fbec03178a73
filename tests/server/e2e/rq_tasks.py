"""RQ jobs of the end-to-end test: one enqueues a child, one fails once then succeeds, one dies."""

import rq
from rq import Retry

from jobtrail_rq import TrackedQueue


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


def web_request(connection, correlation_id):
    """What a web request does: enqueue under the request's correlation ID."""
    from jobtrail_rq import correlation

    queue = TrackedQueue("default", connection=connection)
    with correlation(correlation_id):
        queue.enqueue(send_welcome, 42, job_id="rq-welcome")
        queue.enqueue(charge, "4242", job_id="rq-charge", retry=Retry(max=2))
        queue.enqueue(explode, job_id="rq-explode")
