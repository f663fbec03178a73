"""The Python clients' shared core against a real `jobtrail serve`: a full buffer drops and
counts without blocking, a serve that comes up late gets everything once, a forked child
starts empty, a bad URL never raises, the backoff is capped and jittered.

Run: python3 test_python_core.py JOBTRAIL_BINARY (with contrib/python on PYTHONPATH).
"""

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import jobtrail_client
from jobtrail_client.sender import Backoff

JOBTRAIL = sys.argv.pop(1) if len(sys.argv) > 1 else "jobtrail"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.serve = None

    def tearDown(self):
        if self.serve:
            self.serve.terminate()
            self.serve.wait(timeout=30)
        self.dir.cleanup()

    def start_serve(self, port):
        self.serve = subprocess.Popen([JOBTRAIL, "serve", "--db", self.dir.name + "/jobs.db", "--listen",
                                       "127.0.0.1:%d" % port], stdout=subprocess.PIPE, text=True)
        self.assertIn("listening on", self.serve.stdout.readline())

    def stored(self, state_name="enqueued"):
        db = sqlite3.connect("file:%s/jobs.db?mode=ro" % self.dir.name, uri=True)
        return db.execute("SELECT count(*) FROM event").fetchone()[0]

    def test_a_full_buffer_drops_and_counts_and_never_blocks(self):
        client = jobtrail_client.Client(url="http://127.0.0.1:%d" % free_port(), capacity=100, exit_timeout=0)
        begin = time.perf_counter()
        accepted = sum(client.record("j%d" % i, "enqueued") for i in range(150))
        took = time.perf_counter() - begin
        stats = client.stats()
        self.assertEqual(accepted, 100)
        self.assertEqual((stats.recorded, stats.dropped), (100, 50))
        self.assertLess(took, 1.0)  # no connect timeout on the caller's thread
        client.close(0)

    def test_serve_up_late_gets_every_event_once(self):
        port = free_port()
        client = jobtrail_client.Client(url="http://127.0.0.1:%d" % port, exit_timeout=0)
        for i in range(20):
            client.record("late-%d" % i, "enqueued")
        self.assertFalse(client.flush(0.5))  # nobody listens yet: kept, retried
        self.start_serve(port)
        self.assertTrue(client.flush(15))
        stats = client.stats()
        self.assertEqual((stats.sent, stats.dropped, stats.pending), (20, 0, 0))
        self.assertGreater(stats.retried, 0)
        client.close(1)
        time.sleep(0.1)  # serve commits within ~20 ms
        self.assertEqual(self.stored(), 20)

    def test_a_forked_child_starts_empty(self):
        client = jobtrail_client.Client(url="http://127.0.0.1:%d" % free_port(), exit_timeout=0)
        client.record("parent", "enqueued")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            stats = client.stats()
            os.write(write, b"%d %d" % (stats.recorded, stats.pending))
            os._exit(0)
        os.waitpid(pid, 0)
        self.assertEqual(os.read(read, 100), b"0 0")
        self.assertEqual(client.stats().pending, 1)
        client.close(0)

    def test_a_bad_url_never_raises(self):
        client = jobtrail_client.Client(url="ftp://nowhere", exit_timeout=0)
        self.assertTrue(client.record("j", "enqueued"))
        self.assertTrue(client.flush(5))
        self.assertEqual(client.stats().rejected, 1)
        client.close(0)

    def test_the_backoff_is_capped_and_jittered(self):
        backoff = Backoff(first=0.1, cap=5.0)
        delays = [backoff.next_delay() for _ in range(30)]
        self.assertTrue(all(0.05 <= d <= 5.0 for d in delays))
        self.assertGreater(len(set(round(d, 6) for d in delays[-10:])), 1)
        self.assertGreater(delays[-1], 2.0)


if __name__ == "__main__":
    unittest.main()
