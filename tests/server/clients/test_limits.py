"""The Python client keeps every field within the server's byte limits, and sends `at`.

Run: python3 test_limits.py JOBTRAIL_BINARY (with contrib/python on PYTHONPATH).
"""

import json
import subprocess
import sys
import tempfile
import unittest

import jobtrail_client
from jobtrail_client import fields as jobtrail_rq  # the limits live in the shared core
from jobtrail_client.fields import error_from_traceback as _error_fields

JOBTRAIL = sys.argv.pop(1) if len(sys.argv) > 1 else "jobtrail"


class ErrorFieldsTest(unittest.TestCase):
    def test_multibyte_text_is_cut_by_bytes_between_characters(self):
        # 10,000 two-byte characters: under the character limit, twice the byte limit.
        traceback = "Traceback (most recent call last):\n" + "日" * 40000 + "\nValueError: " + "é" * 10000
        fields = _error_fields(traceback)
        self.assertLessEqual(len(fields["message"].encode()), jobtrail_rq.MAX_MESSAGE_BYTES)
        self.assertLessEqual(len(fields["backtrace"].encode()), jobtrail_rq.MAX_BACKTRACE_BYTES)
        self.assertGreater(len(fields["message"].encode()), jobtrail_rq.MAX_MESSAGE_BYTES - 2)
        # serve's rule: the start, whole characters only, then the marker with the length sent.
        head, marker, rest = fields["message"].partition("\u2026[truncated from ")
        self.assertEqual(set(head), {"é"})
        self.assertEqual((marker, rest), ("\u2026[truncated from ", "20000 bytes]"))
        self.assertTrue(fields["backtrace"].startswith("Traceback (most recent call last):\n日"))
        self.assertTrue(fields["backtrace"].endswith("[truncated from %d bytes]" % len(traceback.encode())))
        self.assertEqual(fields["class"], "ValueError")

    def test_the_cut_is_the_servers_byte_for_byte(self):
        # The same as tracker/src/event.cpp's cut_to: 8192 - len("…[truncated from 9000 bytes]") bytes
        # of the text (the marker's "…" is 3 bytes), backed off to a character's start.
        for text in ("a" * 9000, "a" + "é" * 4500, "€" * 3000):
            cut = jobtrail_rq.cut_free_text(text, jobtrail_rq.MAX_MESSAGE_BYTES)
            sent = len(text.encode())
            tail = ("\u2026[truncated from %d bytes]" % sent).encode()
            end = 8192 - len(tail)
            data = text.encode()
            while data[end] & 0xC0 == 0x80:
                end -= 1
            self.assertEqual(cut.encode(), data[:end] + tail)
        self.assertEqual(jobtrail_rq.cut_free_text("é" * 4096, 8192), "é" * 4096)  # fits: whole

    def test_long_class_and_lone_surrogates(self):
        fields = _error_fields("€" * 150 + ": bad \udcff byte")
        self.assertLessEqual(len(fields["class"].encode()), jobtrail_rq.MAX_CLASS_BYTES)
        self.assertEqual(set(fields["class"].partition("\u2026[truncated from ")[0]), {"€"})
        self.assertTrue(fields["class"].endswith("[truncated from 450 bytes]"))
        fields["message"].encode("utf-8")  # strict: no surrogate left


class ServerTest(unittest.TestCase):
    """The real server takes what the client cut, and every event carries `at`."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.serve = subprocess.Popen([JOBTRAIL, "serve", "--db", self.dir.name + "/jobs.db", "--listen", "127.0.0.1:0"],
                                      stdout=subprocess.PIPE, text=True)
        line = self.serve.stdout.readline()
        self.url = line.split("listening on ")[1].split()[0]

    def tearDown(self):
        self.serve.terminate()
        self.serve.wait(timeout=30)
        self.dir.cleanup()

    def test_a_huge_multibyte_error_is_accepted(self):
        client = jobtrail_client.Client(url=self.url, token="")
        error = _error_fields("Traceback:\n" + "日" * 40000 + "\nValueError: " + "é" * 10000)
        self.assertTrue(client.record("j1", "failed", attempt=1, error=error))
        self.assertTrue(client.close(10))
        stats = client.stats()
        self.assertEqual((stats.sent, stats.rejected, stats.dropped), (1, 0, 0))

    def test_a_100_kb_error_is_stored_cut_with_the_marker_and_its_length(self):
        client = jobtrail_client.Client(url=self.url, token="")
        message = "x" * 100000
        error = jobtrail_client.fields.error_fields("RuntimeError", message, "line\n" * 20000)
        # durable: answered once committed, so `show` below finds it.
        self.assertTrue(client.record("long-error", "failed", attempt=1, error=error, durable=True))
        self.assertTrue(client.close(10))
        shown = subprocess.run([JOBTRAIL, "--db", self.dir.name + "/jobs.db", "--format", "json", "show", "long-error"],
                               check=True, capture_output=True, text=True).stdout
        stored = json.loads(shown)["last_error"]
        self.assertTrue(stored["message"].endswith("x\u2026[truncated from 100000 bytes]"))
        self.assertEqual(len(stored["message"].encode()), jobtrail_rq.MAX_MESSAGE_BYTES)
        self.assertTrue(stored["backtrace"].endswith("\u2026[truncated from 100000 bytes]"))
        self.assertLessEqual(len(stored["backtrace"].encode()), jobtrail_rq.MAX_BACKTRACE_BYTES)

    def test_a_burst_of_failures_with_long_backtraces_is_sent_within_the_body_limit(self):
        # 300 events of 64 KiB: 19.7 MB in one batch, over serve's --max-body (16 MiB) whole.
        client = jobtrail_client.Client(url=self.url, token="")
        error = jobtrail_client.fields.error_fields("RuntimeError", "boom", "frame\n" * 20000)
        for i in range(300):
            self.assertTrue(client.record("burst-%d" % i, "failed", attempt=1, error=error))
        self.assertTrue(client.close(30))
        stats = client.stats()
        self.assertEqual((stats.sent, stats.rejected, stats.dropped), (300, 0, 0))

    def test_every_event_is_sent_with_at(self):
        sent = []
        client = jobtrail_client.Client(url=self.url, token="")
        real_post = client._poster.post

        def recording_post(events, durable):
            sent.extend(json.loads(json.dumps(event)) for event in events)
            return real_post(events, durable)

        client._poster.post = recording_post
        self.assertTrue(client.record("j2", "enqueued"))
        self.assertTrue(client.record("j2", "started", attempt=1, durable=True))
        self.assertTrue(client.close(10))
        self.assertEqual(len(sent), 2)
        for event in sent:
            self.assertIsInstance(event["at"], int)
            self.assertGreater(event["at"], 10 ** 15)


if __name__ == "__main__":
    unittest.main()
