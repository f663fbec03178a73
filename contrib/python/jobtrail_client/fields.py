"""Event fields kept within the server's limits (docs/events.md)."""

import time

# The server's limits, in bytes of UTF-8 (docs/events.md, EventLimits in event.h): a longer ID
# gets the whole event refused; a longer free text (error class, message, backtrace) is cut by
# serve's rule, which cut_free_text() applies here already, marker and all.
MAX_ID_BYTES = 200
MAX_CLASS_BYTES = 200
MAX_MESSAGE_BYTES = 8 * 1024
MAX_BACKTRACE_BYTES = 64 * 1024
MAX_ENTITIES = 64
# What ends a cut text, then the length sent and " bytes]": truncation_marker in event.h.
TRUNCATION_MARKER = "\u2026[truncated from "


def now_us():
    """The event time: microseconds since the Unix epoch, stamped when the event is recorded,
    so that a resent event carries the same `at` and the store recognises it."""
    return time.time_ns() // 1000


def utf8_head(text, limit):
    """The start of ``text`` in at most ``limit`` bytes of UTF-8, cut between characters."""
    # "replace": a lone surrogate (from a surrogateescape'd file name) cannot be sent as JSON.
    return str(text).encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


def cut_free_text(text, limit):
    """``text`` as serve stores it: whole when it fits in ``limit`` bytes of UTF-8, else its start,
    cut between characters, and "…[truncated from N bytes]" (N: the bytes it had), the two within
    ``limit``. The C++ rule truncate_free_text() (tracker/src/event.cpp), byte for byte: the
    client cuts so that one huge text cannot make a batch too large for serve or fill the
    buffer, and what is stored is the same whichever way it came."""
    # "replace": a lone surrogate (from a surrogateescape'd file name) cannot be sent as JSON.
    data = str(text).encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    tail = (TRUNCATION_MARKER + str(len(data)) + " bytes]").encode("utf-8")
    end = max(limit - len(tail), 0)
    for _ in range(3):  # back to the start of a character (at most three continuation bytes)
        if end > 0 and data[end] & 0xC0 == 0x80:
            end -= 1
    return (data[:end] + tail).decode("utf-8")


def error_fields(error_class, message, backtrace=""):
    """The `error` object, each text cut by serve's rule (cut_free_text)."""
    return {"class": cut_free_text(error_class or "", MAX_CLASS_BYTES),
            "message": cut_free_text(message or "", MAX_MESSAGE_BYTES),
            "backtrace": cut_free_text(backtrace or "", MAX_BACKTRACE_BYTES)}


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
