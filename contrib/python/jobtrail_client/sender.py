"""The back of the client: one thread that posts NDJSON batches to `jobtrail serve`.

Not thread-safe by itself: only the sender thread calls ``post``. It keeps one HTTP/1.1
keep-alive connection and reconnects when it breaks.
"""

import json
import random
import socket
import ssl
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
    """Posts one batch per call over a persistent HTTP/1.1 connection. Never raises.

    A small HTTP client of its own rather than http.client: the request goes out in one
    write with TCP_NODELAY, and TCP_QUICKACK is set before each read, so that a server which
    writes its answer in two segments (headers, then body) is not held up by Nagle's
    algorithm against our delayed ACK — 40 ms per request on Linux with http.client.
    """

    def __init__(self, url, token, timeout):
        parsed = urllib.parse.urlsplit(url)
        self.unusable = ""
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            # Not raised: reporting must not break the application; every batch is refused.
            self.unusable = "JOBTRAIL_URL must be http://HOST:PORT or https://HOST:PORT, not %r" % url
            parsed = urllib.parse.urlsplit("http://127.0.0.1:8089")
        self.https = parsed.scheme == "https"
        self.host, self.port = parsed.hostname, parsed.port or (443 if self.https else 80)
        self.path = (parsed.path.rstrip("/") or "") + "/v1/events"
        self.where = "%s://%s%s" % (parsed.scheme, parsed.netloc.rpartition("@")[2], self.path)  # no credentials
        self.timeout = timeout
        host_header = parsed.netloc.rpartition("@")[2]
        self._head = ("Host: %s\r\nContent-Type: application/x-ndjson\r\nConnection: keep-alive\r\n%s"
                      % (host_header, "Authorization: Bearer %s\r\n" % token if token else "")).encode("latin-1")
        self._socket = None

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        return sock

    def _quickack(self):
        if _QUICKACK is not None:
            try:
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass

    def _read_answer(self):
        """(status, body, server_closes) of one response with a Content-Length."""
        data = b""
        while b"\r\n\r\n" not in data:
            self._quickack()
            chunk = self._socket.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before an answer")
            data += chunk
            if len(data) > 1024 * 1024:
                raise ConnectionError("answer headers too long")
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            self._quickack()
            chunk = self._socket.recv(min(65536, length - len(body)))
            if not chunk:
                raise ConnectionError("connection closed in the middle of an answer")
            body += chunk
        closes = headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0")
        return status, body[:length], closes

    def _exchange(self, request):
        if self._socket is None:
            self._socket = self._connect()
        self._socket.sendall(request)
        return self._read_answer()

    def post(self, events, durable):
        """Sends ``events``; returns (SENT|RETRY|REJECTED, a message for the log or "")."""
        if self.unusable:
            return REJECTED, self.unusable
        body = "".join(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
                       for event in events).encode("utf-8", "replace")
        request = (b"POST %s HTTP/1.1\r\n" % (self.path + ("?wait=commit" if durable else "")).encode("latin-1")
                   + self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        try:
            reused = self._socket is not None
            try:
                status, answer, closes = self._exchange(request)
            except (ConnectionError, BrokenPipeError):
                if not reused:
                    raise
                # The server had closed the idle keep-alive connection: once more on a new one.
                self.close()
                status, answer, closes = self._exchange(request)
            if closes:
                self.close()
        except Exception as error:  # noqa: BLE001 - no answer: keep the batch and retry
            self.close()
            return RETRY, "cannot reach jobtrail serve at %s: %s" % (self.where, error)
        if 200 <= status < 300:
            return SENT, ""
        text = answer[:300].decode("utf-8", "replace")
        if status >= 500 or status == 429:
            return RETRY, "jobtrail serve answered %d: %s" % (status, text)
        return REJECTED, "jobtrail serve refused events: %d %s" % (status, text)

    def close(self):
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception:  # noqa: BLE001
                pass
            self._socket = None

    def forget_after_fork(self):
        """In a forked child the socket is the parent's: drop it without closing its stream."""
        self._socket = None


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
