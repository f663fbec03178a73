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
        self.assertTrue(fields["message"].endswith("é"))
        self.assertEqual(set(fields["message"]), {"é"})  # no half character at the cut
        self.assertEqual(fields["class"], "ValueError")

    def test_long_class_and_lone_surrogates(self):
        fields = _error_fields("€" * 150 + ": bad \udcff byte")
        self.assertLessEqual(len(fields["class"].encode()), jobtrail_rq.MAX_CLASS_BYTES)
        self.assertEqual(set(fields["class"]), {"€"})
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
