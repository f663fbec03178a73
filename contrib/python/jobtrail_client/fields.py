"""Event fields kept within the server's limits (docs/events.md)."""

import time

# The server's limits, in bytes of UTF-8: a longer field gets the whole event refused.
MAX_ID_BYTES = 200
MAX_CLASS_BYTES = 200
MAX_MESSAGE_BYTES = 8 * 1024
MAX_BACKTRACE_BYTES = 64 * 1024
MAX_ENTITIES = 64


def now_us():
    """The event time: microseconds since the Unix epoch, stamped when the event is recorded,
    so that a resent event carries the same `at` and the store recognises it."""
    return time.time_ns() // 1000


def utf8_head(text, limit):
    """The start of ``text`` in at most ``limit`` bytes of UTF-8, cut between characters."""
    # "replace": a lone surrogate (from a surrogateescape'd file name) cannot be sent as JSON.
    return str(text).encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def utf8_tail(text, limit):
    """The end of ``text`` in at most ``limit`` bytes of UTF-8, cut between characters."""
    data = str(text).encode("utf-8", "replace")
    return data[max(len(data) - limit, 0):].decode("utf-8", "ignore")


def error_fields(error_class, message, backtrace=""):
    """The `error` object; the end of a message and of a backtrace is where the cause is."""
    return {"class": utf8_head(error_class or "", MAX_CLASS_BYTES),
            "message": utf8_tail(message or "", MAX_MESSAGE_BYTES),
            "backtrace": utf8_tail(backtrace or "", MAX_BACKTRACE_BYTES)}


def error_from_traceback(text):
    """The `error` object from a formatted traceback whose last line reads "ValueError: declined"."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    error_class, _, message = last.partition(": ")
    if not message and " " in error_class:
        error_class, message = "", last
    return error_fields(error_class, message, text or "")


def error_from_exception(exc, backtrace=""):
    cls = type(exc)
    name = cls.__name__ if cls.__module__ in ("builtins", "__main__") else cls.__module__ + "." + cls.__qualname__
    return error_fields(name, str(exc), backtrace)


def clean_entities(entities):
    """`type:id` strings, unique, at most MAX_ENTITIES of them; anything else is left out."""
    seen = []
    for entity in entities or ():
        entity = utf8_head(entity, MAX_ID_BYTES)
        if ":" in entity and entity not in seen:
            seen.append(entity)
            if len(seen) == MAX_ENTITIES:
                break
    return seen
