"""Celery tasks of the end-to-end test: one enqueues a child, one fails once then is retried,
one dies, one is delayed. The broker is $REDIS_URL."""

import os
import signal
import time

import redis
from celery import Celery

import jobtrail_celery

app = Celery("celery_tasks", broker=os.environ["REDIS_URL"])
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
                worker_prefetch_multiplier=1)
jobtrail_celery.install()
_redis = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.task
@jobtrail_celery.track(entities=lambda user_id: ["user:%s" % user_id])
def send_welcome(user_id):
    audit_signup.delay(user_id)  # published from inside a task: joins the trace with this one as parent


@app.task
def audit_signup(user_id):
    return "audited %s" % user_id


@app.task(bind=True, max_retries=2)
def charge(self, card):
    if _redis.incr("attempts:" + self.request.id) == 1:
        raise self.retry(exc=ConnectionError("payment gateway timed out"), countdown=1)
    return "charged %s" % card


@app.task
def explode():
    raise ValueError("this job always fails")


@app.task
def remind(user_id):
    return "reminded %s" % user_id


def web_request(correlation_id):
    """What a web request does: publish under the request's correlation ID."""
    with jobtrail_celery.correlation(correlation_id):
        send_welcome.apply_async((42,), task_id="celery-welcome")
        charge.apply_async(("4242",), task_id="celery-charge")
        explode.apply_async(task_id="celery-explode")
        remind.apply_async((42,), task_id="celery-remind", countdown=1)  # delayed: stays in the trace
        remind.apply_async((43,), task_id="celery-revoked", countdown=2)
    app.control.revoke("celery-revoked")  # an operator changes their mind
    jobtrail_celery.lifecycle.client.flush(5)


@app.task
def long_healthy(seconds, user_id):
    """Runs past the stuck deadline, heartbeating; tags what it touched from inside."""
    jobtrail_celery.tag("user:%s" % user_id)
    time.sleep(seconds)


@app.task
def hangs():
    """Hangs after a second of work: its whole process frozen (as in a stuck syscall), heartbeats included."""
    time.sleep(1.2)  # its start and first heartbeats are sent
    _redis.rpush("hung_pids", os.getpid())
    os.kill(os.getpid(), signal.SIGSTOP)


@app.task
def noop(n):
    return n


@app.task(soft_time_limit=1)
def soft_limited():
    time.sleep(10)  # SoftTimeLimitExceeded is raised in here after 1 s


@app.task(time_limit=1)
def hard_limited():
    time.sleep(10)  # the child is killed after 1 s


def lifecycle_request(correlation_id):
    """The lifecycles e2e_workers_lifecycle.sh checks: a task on the solo pool's queue, a task
    no worker knows, a soft and a hard time limit (prefork)."""
    with jobtrail_celery.correlation(correlation_id):
        noop.apply_async((1,), task_id="celery-solo", queue="solo")
        app.send_task("celery_tasks.no_such_task", task_id="celery-unknown", queue="solo")
        soft_limited.apply_async(task_id="celery-soft", queue="limits")
        hard_limited.apply_async(task_id="celery-hard", queue="limits")
    jobtrail_celery.lifecycle.client.flush(5)
