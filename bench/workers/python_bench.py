"""RQ and Celery, plain and tracked: throughput of real workers draining the same trivial jobs,
and the time an enqueue takes on the caller's thread. Run by bench/workers_bench.sh, which
starts redis-server and `jobtrail serve`; prints one JSON line per worker kind:

  {"worker": "rq", "jobs": N, "plain_jobs_per_s": x, "tracked_jobs_per_s": y,
   "enqueue_added_us_p50": a, "enqueue_added_us_p99": b}

  usage: python_bench.py rq|celery   (env REDIS_URL, JOBTRAIL_URL, JOBTRAIL_BENCH_JOBS)

Throughput: each phase starts its worker first (idle), then enqueues N jobs from this process
and ends when the N-th job has run (a Redis counter the jobs increment): jobs/s is N over that
span. Phases alternate plain, tracked, plain, tracked ($JOBTRAIL_BENCH_ROUNDS rounds, default
2); each kind's median is printed. The enqueue cost on the caller's thread is measured apart:
N plain and N tracked enqueues in alternating blocks of 50 (so the machine's drift hits both
alike); "added" is tracked minus plain at the same percentile.
"""

import json
import os
import subprocess
import sys
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TRACKED = os.environ.get("JOBTRAIL_BENCH_TRACKED") == "1"


# -- the jobs (run by the workers) ------------------------------------------------------------
def rq_job(counter):
    import rq
    rq.get_current_job().connection.incr(counter)


celery_app = None
if os.environ.get("JOBTRAIL_BENCH_CELERY") == "1":
    from celery import Celery
    celery_app = Celery("python_bench", broker=REDIS_URL)
    celery_app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                           broker_connection_retry_on_startup=True)
    _counter_redis = redis.Redis.from_url(REDIS_URL)

    @celery_app.task(name="python_bench.celery_job")
    def celery_job(counter):
        _counter_redis.incr(counter)

    if TRACKED:
        import jobtrail_celery
        jobtrail_celery.install()


# -- one phase -------------------------------------------------------------------------------
def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def start_worker(kind, tracked, queue):
    env = dict(os.environ, JOBTRAIL_BENCH_TRACKED="1" if tracked else "0", JOBTRAIL_BENCH_CELERY="1")
    if kind == "rq":
        # Its own small launcher, with the job's module loaded before the horses fork (as a
        # deployment would preload its code), not re-imported in every horse.
        command = [sys.executable, os.path.join(HERE, "python_bench.py"), "rq-worker", queue]
        env["JOBTRAIL_BENCH_CELERY"] = "0"
    else:
        command = [sys.executable, "-m", "celery", "-A", "python_bench", "worker", "-Q", queue, "--pool", "prefork",
                   "-c", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=open(
        os.path.join(os.environ.get("BENCH_LOG_DIR", "/tmp"), "%s-%s.log" % (kind, "tracked" if tracked else "plain")),
        "w"))


def wait_idle(connection, kind, queue, worker):
    # The worker is up when it has registered (RQ) or taken a probe job (Celery).
    probe = "probe:" + queue
    enqueue = make_enqueuer(kind, False, queue, connection)
    enqueue(probe)
    deadline = time.monotonic() + 60
    while int(connection.get(probe) or 0) < 1:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("python_bench: the %s worker did not start" % kind)
        time.sleep(0.05)


def make_enqueuer(kind, tracked, queue, connection):
    if kind == "rq":
        import rq
        if tracked:
            import jobtrail_rq
            q = jobtrail_rq.TrackedQueue(queue, connection=connection)
        else:
            q = rq.Queue(queue, connection=connection)
        return lambda counter: q.enqueue("python_bench.rq_job", counter, result_ttl=0)
    task = celery_app.tasks["python_bench.celery_job"]
    return lambda counter: task.apply_async((counter,), queue=queue)


def phase(kind, tracked, jobs):
    connection = redis.Redis.from_url(REDIS_URL)
    queue = "bench-%s-%s" % (kind, "tracked" if tracked else "plain")
    counter = "done:" + queue
    worker = start_worker(kind, tracked, queue)
    try:
        wait_idle(connection, kind, queue, worker)
        # The counter of an earlier round (or run) would end this one before its jobs ran.
        connection.delete(counter)
        track_celery_publishes(kind, tracked)
        enqueue = make_enqueuer(kind, tracked, queue, connection)
        clock = time.perf_counter
        begin = clock()
        for _ in range(jobs):
            enqueue(counter)
        while int(connection.get(counter) or 0) < jobs:
            if worker.poll() is not None:
                raise SystemExit("python_bench: the %s worker died" % kind)
            time.sleep(0.002)
        span = clock() - begin
    finally:
        worker.terminate()
        worker.wait(60)
    return jobs / span


def rq_worker(queue):
    import rq
    connection = redis.Redis.from_url(REDIS_URL)
    if TRACKED:
        import jobtrail_rq
        worker_class, queue_class = jobtrail_rq.TrackedWorker, jobtrail_rq.TrackedQueue
    else:
        worker_class, queue_class = rq.Worker, rq.Queue
    sys.modules.setdefault("python_bench", sys.modules[__name__])  # the jobs' module, preloaded
    worker_class([queue_class(queue, connection=connection)], connection=connection).work(logging_level="WARNING")


def enqueue_cost(kind, jobs):
    """Enqueue times (µs) plain and tracked, in alternating blocks of 50 so that the machine's
    drift hits both alike; to queues no worker reads, deleted afterwards."""
    connection = redis.Redis.from_url(REDIS_URL)
    plain = make_enqueuer(kind, False, "cost-plain", connection)
    tracked = make_enqueuer(kind, True, "cost-tracked", connection)
    times = {False: [], True: []}
    clock = time.perf_counter
    for block in range(2 * max(1, jobs // 50)):
        is_tracked = block % 2 == 1
        track_celery_publishes(kind, is_tracked)
        enqueue = tracked if is_tracked else plain
        for _ in range(50):
            t0 = clock()
            enqueue("cost")
            times[is_tracked].append((clock() - t0) * 1e6)
    for key in connection.scan_iter("*cost-*"):
        connection.delete(key)
    return times[False], times[True]


def track_celery_publishes(kind, on):
    # Celery's signals are per process: this process's publishes are tracked only when asked.
    if kind != "celery":
        return
    import jobtrail_celery
    from celery import signals
    jobtrail_celery.install()
    if on:
        signals.before_task_publish.connect(jobtrail_celery._before_publish, weak=False)
    else:
        signals.before_task_publish.disconnect(jobtrail_celery._before_publish)


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main():
    kind = sys.argv[1]
    if kind == "rq-worker":
        return rq_worker(sys.argv[2])
    jobs = int(os.environ.get("JOBTRAIL_BENCH_JOBS", "2000"))
    global celery_app
    if kind == "celery":
        os.environ["JOBTRAIL_BENCH_CELERY"] = "1"
        sys.path.insert(0, HERE)
        import python_bench as module  # the app the worker imports, with its task registered
        celery_app = module.celery_app
    # Throughput: plain, tracked, plain, tracked, ...; the median of each kind's rounds.
    rounds = int(os.environ.get("JOBTRAIL_BENCH_ROUNDS", "2"))
    rates = {False: [], True: []}
    for _ in range(rounds):
        for tracked in (False, True):
            rates[tracked].append(phase(kind, tracked, jobs))
    plain_us, tracked_us = enqueue_cost(kind, jobs)
    import jobtrail_client
    jobtrail_client.flush(30)  # the tracked enqueues' events, before serve is stopped
    print(json.dumps({"worker": kind, "jobs": jobs, "plain_jobs_per_s": round(median(rates[False]), 1),
                      "tracked_jobs_per_s": round(median(rates[True]), 1),
                      "enqueue_added_us_p50": round(percentile(tracked_us, 50) - percentile(plain_us, 50), 1),
                      "enqueue_added_us_p99": round(percentile(tracked_us, 99) - percentile(plain_us, 99), 1),
                      "enqueue_plain_us_p50": round(percentile(plain_us, 50), 1), "rounds": rounds}))


if __name__ == "__main__":
    main()
