"""RQ and Celery, plain and tracked: throughput of real workers draining the same trivial jobs,
and the time an enqueue takes on the caller's thread. Run by bench/workers_bench.sh, which
starts redis-server and `jobtrail serve`; prints one JSON line per worker kind:

  {"worker": "rq", "jobs": N, "plain_jobs_per_s": x, "tracked_jobs_per_s": y,
   "enqueue_added_us_p50": a, "enqueue_added_us_p99": b}

  usage: python_bench.py rq|celery   (env REDIS_URL, JOBTRAIL_URL, JOBTRAIL_BENCH_JOBS)

Throughput: each phase enqueues N jobs from this process (tracked: and sends their events),
then starts its worker and times it from the first job done to the N-th (a Redis counter the
jobs increment, polled every 2 ms): jobs/s is the jobs done in that span over the span. Phases
alternate plain, tracked, plain, tracked ($JOBTRAIL_BENCH_ROUNDS rounds, default 2); each
kind's median is printed. The enqueue cost on the caller's thread is measured apart:
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
    connection.delete(counter)  # an earlier round's count would end this one at once
    track_celery_publishes(kind, tracked)
    enqueue = make_enqueuer(kind, tracked, queue, connection)
    for _ in range(jobs):
        enqueue(counter)
    if tracked:
        # The enqueues' own events go out now, not while the worker drains: serve ingesting
        # them beside a tracked drain (and not beside a plain one) would be a cost of the
        # enqueue, which enqueue_cost() measures apart (as sidekiq_bench.rb does).
        import jobtrail_client
        jobtrail_client.flush(30)
    worker = start_worker(kind, tracked, queue)
    try:
        # Timed from the first job done to the last: the worker's own start is not the drain.
        clock = time.perf_counter
        deadline = clock() + 600
        first = first_done = None
        while True:
            done = int(connection.get(counter) or 0)
            now = clock()
            if done >= 1 and first is None:
                first, first_done = now, done
            if done >= jobs:
                break
            if worker.poll() is not None or now > deadline:
                raise SystemExit("python_bench: the %s worker died or stalled at %d of %d jobs" % (kind, done, jobs))
            time.sleep(0.002)
    finally:
        worker.terminate()
        worker.wait(60)
    return (jobs - first_done) / max(now - first, 1e-6) if jobs > first_done else float("nan")


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
