"""`rq_main.py worker REDIS_URL` runs a tracked worker with RQ's scheduler;
`rq_main.py enqueue REDIS_URL CID` is the web request."""

import logging
import sys

import redis

import rq_tasks
from jobtrail_rq import TrackedQueue, TrackedWorker

logging.basicConfig(level=logging.WARNING)
connection = redis.Redis.from_url(sys.argv[2])
if sys.argv[1] == "worker":
    worker = TrackedWorker([TrackedQueue("default", connection=connection)], connection=connection)
    worker.work(logging_level="WARNING", with_scheduler=True)
else:
    rq_tasks.web_request(connection, sys.argv[3])
