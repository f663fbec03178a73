"""The back of the client: one thread that posts NDJSON batches to `jobtrail serve`.

Not thread-safe by itself: only the sender thread calls ``post``. It keeps one HTTP/1.1
keep-alive connection and reconnects when it breaks.
"""

import http.client
import json
import random
import urllib.parse

# What the server answers and what the sender does about it (docs/events.md).
SENT = "sent"          # 2xx: stored (or queued to be)
RETRY = "retry"        # no answer, 5xx, 429: the batch is kept and sent again after a backoff
REJECTED = "rejected"  # 4xx: resending cannot help; the events are counted as rejected


class Backoff:
    """Exponential, capped, jittered delays between retries ("full jitter" over the upper half,
    so a fleet restarting with serve does not retry in step). Not thread-safe."""

    def __init__(self, first=0.1, cap=5.0):
        self.first, self.cap, self.failures = first, cap, 0

    def next_delay(self):
        self.failures += 1
        ceiling = min(self.cap, self.first * (2 ** min(self.failures - 1, 16)))
        return random.uniform(ceiling / 2, ceiling)

    def reset(self):
        self.failures = 0


class HttpPoster:
    """Posts one batch per call over a persistent connection. Never raises."""

    def __init__(self, url, token, timeout):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("JOBTRAIL_URL must be http://HOST:PORT or https://HOST:PORT, not %r" % url)
        self.https = parsed.scheme == "https"
        self.host, self.port = parsed.hostname, parsed.port
        self.path = (parsed.path.rstrip("/") or "") + "/v1/events"
        self.where = "%s://%s%s" % (parsed.scheme, parsed.netloc.rpartition("@")[2], self.path)  # no credentials
        self.timeout = timeout
        self.headers = {"Content-Type": "application/x-ndjson", "Connection": "keep-alive"}
        if token:
            self.headers["Authorization"] = "Bearer " + token
        self._connection = None

    def post(self, events, durable):
        """Sends ``events``; returns (SENT|RETRY|REJECTED, a message for the log or "")."""
        body = "".join(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
                       for event in events).encode("utf-8", "replace")
        path = self.path + ("?wait=commit" if durable else "")
        try:
            if self._connection is None:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self._connection = cls(self.host, self.port, timeout=self.timeout)
            self._connection.request("POST", path, body=body, headers=self.headers)
            response = self._connection.getresponse()
            answer = response.read(64 * 1024)
            if response.will_close:
                self.close()
        except Exception as error:  # noqa: BLE001 - no answer: keep the batch and retry
            self.close()
            return RETRY, "cannot reach jobtrail serve at %s: %s" % (self.where, error)
        if 200 <= response.status < 300:
            return SENT, ""
        text = answer[:300].decode("utf-8", "replace")
        if response.status >= 500 or response.status == 429:
            return RETRY, "jobtrail serve answered %d: %s" % (response.status, text)
        return REJECTED, "jobtrail serve refused events: %d %s" % (response.status, text)

    def close(self):
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001
                pass
            self._connection = None

    def forget_after_fork(self):
        """In a forked child the socket is the parent's: drop it without closing its stream."""
        self._connection = None
