"""`celery_main.py enqueue CID` is the web request of the end-to-end test (the worker is
`python3 -m celery -A celery_tasks worker`)."""

import logging
import sys

import celery_tasks

logging.basicConfig(level=logging.WARNING)
if sys.argv[1] == "enqueue":
    celery_tasks.web_request(sys.argv[2])
