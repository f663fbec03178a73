#!/usr/bin/env python3
"""console_browser_bench: how long headless Chromium takes to show the waterfall of a 5,000-job
trace served by a real `jobtrail serve`, beside a 50-job trace measured in the same run. Times
from the browser's Navigation Timing: the server's answer (request start to
response end), DOMContentLoaded, and the load event (the whole page laid out). Aim: the
5,000-job waterfall in under a second.

Usage: console_browser_bench.py JOBTRAIL [--runs N]       (Debian's /usr/bin/python3)
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def post(base, events):
    body = "\n".join(json.dumps(e) for e in events).encode()
    req = urllib.request.Request(base + "/v1/events?wait=commit", data=body, method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=120) as response:
        if response.status != 200:
            sys.exit(f"POST answered {response.status}")


def trace_events(name, jobs, start):
    events = []
    for i in range(jobs):
        job = {"job_id": f"{name}-{i}", "job": "InvoiceJob" if i else "MonthCloseJob", "queue": "billing",
               "correlation_id": name}
        if i:
            job["parent_job_id"] = f"{name}-0"
        at = start + i * 1_000_000
        events.append(dict(job, state="enqueued", at=at))
        events.append(dict(job, state="started", attempt=1, at=at + 20_000_000))
        if i % 10 == 3:
            events.append(dict(job, state="failed", attempt=1, at=at + 40_000_000, error="timeout"))
            events.append(dict(job, state="enqueued", attempt=2, at=at + 41_000_000))
            events.append(dict(job, state="started", attempt=2, at=at + 60_000_000))
            events.append(dict(job, state="succeeded", attempt=2, at=at + 90_000_000))
        else:
            events.append(dict(job, state="succeeded", attempt=1, at=at + 50_000_000))
    return events


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("jobtrail")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="jobtrail-console-bench-")
    serve = subprocess.Popen([args.jobtrail, "serve", "--db", f"sqlite:{work}/bench.db", "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    driver = None
    try:
        base = serve.stdout.readline().split("listening on ")[1].split()[0]
        start = int((time.time() - 3 * 3600) * 1_000_000)
        big = trace_events("month-close-5000", 5000, start)
        for i in range(0, len(big), 5000):
            post(base, big[i:i + 5000])
        post(base, trace_events("month-close-50", 50, start))

        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
            options.add_argument(flag)
        options.binary_location = shutil.which("chromium")
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)

        def measure(trace):
            rows = []
            for _ in range(args.runs + 1):
                driver.get(f"{base}/ui/traces/{trace}")
                timing = driver.execute_script("""
                    const n = performance.getEntriesByType('navigation')[0];
                    return {server: n.responseEnd - n.requestStart, dom: n.domContentLoadedEventEnd,
                            load: n.loadEventEnd, rows: document.querySelectorAll('svg.waterfall-chart .job-row').length};""")
                rows.append(timing)
            return rows[1:]  # the first run warms the browser and the store's cache

        print(f"{'trace':<22} {'rows':>6} {'server p50':>11} {'DOM p50':>9} {'load p50':>9} {'load max':>9}")
        results = {}
        for trace in ("month-close-50", "month-close-5000"):
            rows = measure(trace)
            load = [r["load"] for r in rows]
            results[trace] = statistics.median(load)
            print(f"{trace:<22} {rows[0]['rows']:>6} {statistics.median(r['server'] for r in rows):>8.0f} ms "
                  f"{statistics.median(r['dom'] for r in rows):>6.0f} ms {results[trace]:>6.0f} ms {max(load):>6.0f} ms")
        print(f"5,000-job waterfall: loaded in {results['month-close-5000']:.0f} ms (aim < 1000 ms), "
              f"{results['month-close-5000'] / results['month-close-50']:.1f}x the 50-job trace")
    finally:
        if driver is not None:
            driver.quit()
        serve.terminate()
        serve.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
