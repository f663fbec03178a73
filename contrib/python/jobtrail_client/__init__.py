"""The shared core of jobtrail's Python worker clients (stdlib only).

    import jobtrail_client as jobtrail
    with jobtrail.correlation(traceparent=request.headers.get("traceparent")): ...   # web request
    jobtrail.tag("user:42")                                                          # inside a job
    jobtrail.default_client().stats()     # recorded, sent, dropped, retried, rejected, pending

The RQ and Celery integrations (jobtrail_rq, jobtrail_celery) are built on it; see README.md.
"""

from .client import Client, Stats, default_client, set_default_client
from .context import (correlation, correlation_from_traceparent, current_correlation_id, declared_entities,
                      is_durable, new_correlation_id, running_job, tag, track)
from .fields import error_fields, error_from_exception, error_from_traceback
from .heartbeat import DEFAULT_INTERVAL_S as DEFAULT_HEARTBEAT_INTERVAL_S
from .lifecycle import Lifecycle

__all__ = ["Client", "Stats", "default_client", "set_default_client", "correlation", "correlation_from_traceparent",
           "current_correlation_id", "declared_entities", "is_durable", "new_correlation_id", "running_job", "tag",
           "track", "error_fields", "error_from_exception", "error_from_traceback", "DEFAULT_HEARTBEAT_INTERVAL_S",
           "Lifecycle", "flush", "stats"]


def flush(timeout=2.0):
    """Sends what the default client holds, waiting at most ``timeout`` seconds; True if all went."""
    return default_client().flush(timeout)


def stats():
    """The default client's counts: recorded, sent, dropped, retried, rejected, pending."""
    return default_client().stats()
