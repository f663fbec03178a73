#!/usr/bin/env python3
"""The web console in a real browser: Debian's chromium, headless, driven by chromium-driver
through selenium, against a real `jobtrail serve` on the demo's store (examples/run_demo.sh).

Walks the seed stories by clicking (a failing check's row to its job, the job to its trace, the
waterfall's bars; an SQL check's row to its job and its entity), opens an entity page, watches a live page follow an event posted to serve,
opens the blast radius of the failed and dead jobs (from the overview and from a search), shows
that a job ID and an error text holding <script> render as text and run nothing, that reads need
the token, and that every link of every page answers 200. Screenshots of each page go to
--artifacts.

Usage: browser_test.py --build BUILD_DIR --source SOURCE_DIR --artifacts DIR
"""
import argparse
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TOKEN = "console-test-token-5f2c"
# Attacker-controlled text: each would run script if any page put it into HTML unescaped.
HOSTILE_ID = '<script>window.__pwned="id"</script>"\'><img src=x onerror="window.__pwned=\'img\'">'
HOSTILE_ERROR = '<script>alert("error text")</script><svg onload="window.__pwned=\'svg\'">'
HOSTILE_TRACE = 'trace-"><script>window.__pwned="trace"</script>'


def fail(message):
    print("browser_test.py: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print("ok - " + message)


class Links(html.parser.HTMLParser):
    """Every href and src of a page."""

    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def request(base, path, token=None, method="GET", body=None, headers=None):
    """(status, headers, body) of one request; never raises for an HTTP status."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=body, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8", "replace")


def us(seconds):
    """A time as serve takes it: integer microseconds since the epoch."""
    return int(seconds * 1_000_000)


def post_events(base, events):
    status, _, body = request(base, "/v1/events?wait=commit", TOKEN, "POST",
                              "\n".join(json.dumps(e) for e in events).encode(),
                              {"Content-Type": "application/x-ndjson"})
    if status != 200:
        fail(f"POST /v1/events answered {status}: {body}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()
    jobtrail = os.path.join(args.build, "cli", "jobtrail")
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            fail(f"{program} is not installed (scripts/install-deps.sh --test installs chromium and chromium-driver)")
    os.makedirs(args.artifacts, exist_ok=True)

    work = tempfile.mkdtemp(prefix="jobtrail-console-")
    demo = subprocess.run(["bash", os.path.join(args.source, "examples", "run_demo.sh"), args.build],
                          env=dict(os.environ, JOBTRAIL_DEMO_DIR=work), capture_output=True, text=True)
    if demo.returncode != 0:
        fail("the demo failed:\n" + demo.stdout + demo.stderr)
    check("/ui/" in demo.stdout, "the demo prints the console's URL")
    store = "sqlite:" + os.path.join(work, "jobtrail-demo.db")
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    serve = subprocess.Popen([jobtrail, "serve", "--db", store, "--listen", "127.0.0.1:0", "--token-file", token_file],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        line = serve.stdout.readline()
        if "listening on http://" not in line:
            fail("serve did not start: " + line + serve.stderr.read())
        base = line.split("listening on ")[1].split()[0].rstrip("/")

        # Hostile text, and a job that is still running for the live page.
        now = time.time()
        post_events(base, [
            {"job_id": HOSTILE_ID, "state": "enqueued", "job": "HostileJob", "queue": "default",
             "correlation_id": HOSTILE_TRACE, "entities": ["user:666"], "at": us(now - 5)},
            {"job_id": HOSTILE_ID, "state": "started", "attempt": 1, "at": us(now - 4)},
            {"job_id": HOSTILE_ID, "state": "dead", "attempt": 1, "at": us(now - 3),
             "error": {"class": "<b>Boom</b>", "message": HOSTILE_ERROR, "backtrace": HOSTILE_ERROR}},
            {"job_id": "live-job-1", "state": "enqueued", "job": "LiveJob", "queue": "default", "at": us(now - 2)},
            {"job_id": "live-job-1", "state": "started", "attempt": 1, "at": us(now - 1)},
        ])

        # Reads need the token: without it every page is the login form, 401.
        for path in ("/ui/", "/ui/jobs/live-job-1", "/ui/checks", "/ui/traces/4bf92f3577b34da6a3ce929d0e0e4736"):
            status, _, body = request(base, path)
            check(status == 401 and 'name="token"' in body and "LiveJob" not in body and "<table" not in body,
                  f"GET {path} without the token is refused (401, the login form)")
        status, _, _ = request(base, "/ui/", token=TOKEN)
        check(status == 200, "the bearer header is enough to read")
        status, headers, _ = request(base, "/ui/login", method="POST",
                                     body=b"token=wrong&next=%2Fui%2F",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        check(status == 401 and "Set-Cookie" not in headers, "a wrong token signs nobody in")
        status, headers, _ = request(base, "/ui/", token=TOKEN)
        csp = headers.get("Content-Security-Policy", "")
        check("script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp,
              "pages carry a CSP with script only from the server and no framing")
        check(headers.get("X-Content-Type-Options") == "nosniff", "pages carry X-Content-Type-Options: nosniff")

        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
            options.add_argument(flag)
        options.binary_location = shutil.which("chromium")
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        driver.set_page_load_timeout(30)
        wait = WebDriverWait(driver, 15)

        def shot(name):
            driver.save_screenshot(os.path.join(args.artifacts, name + ".png"))

        def no_script_ran(where):
            try:
                alert = driver.switch_to.alert
                fail(f"{where}: an alert opened: {alert.text!r}")
            except NoAlertPresentException:
                pass
            check(driver.execute_script("return window.__pwned === undefined"), f"{where}: no injected script ran")

        def job_path(job_id):
            return "/ui/jobs/" + urllib.parse.quote(job_id, safe="")

        def bar_under(kind):
            """What a pointer on the middle of the waterfall's first bar of KIND meets: its row's link
            and that row's title (the bars are paths, one per kind; the rows are links over them)."""
            return driver.execute_script("""
                const path = document.querySelector('svg.waterfall-chart path.' + arguments[0]);
                if (!path) return null;
                const [, x, y, width] = /^M([\\d.]+) ([\\d.]+)h([\\d.]+)/.exec(path.getAttribute('d')).map(Number);
                const svg = path.ownerSVGElement;
                window.scrollTo(0, svg.getBoundingClientRect().top + window.scrollY + y - 100);
                const box = svg.getBoundingClientRect();
                const row = document.elementFromPoint(box.left + x + width / 2, box.top + y + 5).closest('a.job-row');
                return row && [row.getAttribute('href'), row.querySelector('title').textContent];""", kind)

        # Sign in through the form: the cookie is HttpOnly, so the page's script cannot read it.
        driver.get(base + "/ui/")
        check(driver.find_elements(By.NAME, "token"), "the browser is shown the login form first")
        shot("login")
        driver.find_element(By.NAME, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main h1"))
        check(driver.find_element(By.CSS_SELECTOR, "main h1").text == "Overview", "signing in opens the overview")
        cookie = driver.get_cookie("jobtrail_session")
        check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
              "the session cookie is HttpOnly and SameSite=Strict")
        check(driver.execute_script("return document.cookie") == "", "the page's script sees no cookie")
        check(len(driver.find_elements(By.CSS_SELECTOR, "svg.throughput rect.bar")) > 0,
              "the overview draws throughput per class")
        shot("overview")

        # The eight-hour report: a failing check's row, to its job, to its trace.
        driver.find_element(By.LINK_TEXT, "stuck_jobs").click()
        wait.until(lambda d: "stuck_jobs" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        shot("check")
        rows = driver.find_elements(By.CSS_SELECTOR, "table.failing a.row-job")
        check(rows and rows[0].text == "nightly-report-2017-08-31", "the stuck_jobs check lists the report's job")
        rows[0].click()
        wait.until(lambda d: "nightly-report-2017-08-31" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        check("started" in driver.find_element(By.CSS_SELECTOR, "main h1").text, "the report is still running")
        shot("job")
        driver.find_element(By.CSS_SELECTOR, "a.trace-link").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.waterfall-chart"))
        check(driver.find_elements(By.CSS_SELECTOR, "svg.waterfall-chart path.ongoing"),
              "the report's trace shows a bar still going")
        row = bar_under("ongoing")
        check(row is not None and row[0] == job_path("nightly-report-2017-08-31") and
              row[1].startswith("nightly-report-2017-08-31: ") and "+ (attempt" in row[1],
              f"the bar still going is on the report's row, which links it and says so ({row})")
        shot("trace-report")

        # The unvalidated user: the SQL check's failing row names user 45, whose welcome email
        # the mail gateway refused for good; the row links the job and the user.
        driver.get(base + "/ui/")
        driver.find_element(By.LINK_TEXT, "unvalidated_users_without_welcome_email").click()
        wait.until(lambda d: "unvalidated_users_without_welcome_email" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        shot("check-sql")
        rows = [row for row in driver.find_elements(By.CSS_SELECTOR, "table.failing tbody tr") if "user45@" in row.text]
        check(len(rows) == 1, "the SQL check lists user 45 as a failing row")
        entity = rows[0].find_elements(By.CSS_SELECTOR, "a[href^='/ui/entities/']")
        check([link.text for link in entity] == ["user:45"], "the row links its entity, user:45")
        jobs = rows[0].find_elements(By.CSS_SELECTOR, "a.row-job")
        check([link.text for link in jobs] == ["welcome-email-45"], "the row links the job that touched user 45")
        jobs[0].click()
        wait.until(lambda d: "welcome-email-45" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        check("dead" in driver.find_element(By.CSS_SELECTOR, "main h1").text and
              "550 5.1.1" in driver.find_element(By.CSS_SELECTOR, "main").text,
              "user 45's welcome email is dead, with the gateway's refusal")
        driver.back()
        wait.until(lambda d: "unvalidated_users_without_welcome_email" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        driver.find_element(By.LINK_TEXT, "user:45").click()
        wait.until(lambda d: "user:45" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        check(driver.find_elements(By.LINK_TEXT, "welcome-email-45"), "user 45's entity page lists the email job")
        shot("entity-user")

        # The double charge: everything that touched customer 2, a payment, its month-close trace.
        driver.get(base + "/ui/entities/" + urllib.parse.quote("customer:2", safe=""))
        text = driver.find_element(By.CSS_SELECTOR, "main").text
        check("payment-2017-08-2" in text and "payment-2017-08-2-rerun" in text,
              "the entity page lists both charges of customer 2")
        shot("entity")
        driver.find_element(By.LINK_TEXT, "payment-2017-08-2").click()
        wait.until(lambda d: "payment-2017-08-2" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        check("duplicate_idempotency_key" in driver.find_element(By.CSS_SELECTOR, "main").text,
              "the payment's page shows the anomaly with the other charge")
        check(driver.find_elements(By.LINK_TEXT, "payment-2017-08-2-rerun"), "the other charge is a link")
        driver.find_element(By.CSS_SELECTOR, "a.trace-link").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.waterfall-chart"))
        rows = driver.find_elements(By.CSS_SELECTOR, "svg.waterfall-chart a.job-row")
        tree = driver.find_elements(By.CSS_SELECTOR, "table.tree tbody tr")
        check(len(rows) == len(tree) and len(rows) >= 5, f"the waterfall has a row per job of the tree ({len(rows)})")
        check([row.get_dom_attribute("href") for row in rows] ==
              [cell.get_dom_attribute("href") for cell in driver.find_elements(By.CSS_SELECTOR, "table.tree tbody tr a")],
              "the waterfall's rows link the tree's jobs, in the tree's order")
        titles = driver.execute_script(
            "return [...document.querySelectorAll('svg.waterfall-chart a.job-row > title')].map(t => t.textContent)")
        check(len(titles) == len(rows) and all(": " in title and ("waited" in title or "attempt" in title) for title in titles),
              "every row of the waterfall tells its bars in its title")
        row = bar_under("retry")
        check(row is not None and row[0] == job_path("payment-2017-08-2") and
              row[1].startswith("payment-2017-08-2: 1 earlier attempts, "),
              f"the retried payment's earlier attempt shows in the waterfall, on its row, which says so ({row})")
        # From the top, header and all: the README shows this one (docs/console-trace.png).
        driver.execute_script("window.scrollTo(0, 0)")
        shot("trace")

        driver.get(base + "/ui/jobs?" + urllib.parse.urlencode({"state": "", "job": "WelcomeEmailJob", "limit": "2"}))
        check(len(driver.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")) == 2, "search pages by the limit")
        count = driver.find_element(By.CSS_SELECTOR, "main p.count .shown").text
        check(count.startswith("showing 2 of ") and count.endswith(" jobs"), f"the search says how many match ({count!r})")
        older = driver.find_element(By.CSS_SELECTOR, "a[rel=next]")
        check("cursor=" in older.get_dom_attribute("href"), "the next page's link carries the store's cursor")
        first_page = driver.find_element(By.CSS_SELECTOR, "table.jobs tbody").text
        older.click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "table.jobs tbody").text != first_page)
        check(True, "the next page of a search shows older jobs")
        shot("search")

        # Live: the running job's page follows an event posted to serve, without a reload.
        driver.get(base + "/ui/jobs/live-job-1")
        check("started" in driver.find_element(By.CSS_SELECTOR, "main h1").text, "the live job is shown running")
        driver.execute_script("window.__same_page = 42")
        post_events(base, [{"job_id": "live-job-1", "state": "succeeded", "attempt": 1, "at": us(time.time())}])
        WebDriverWait(driver, 20).until(
            lambda d: "succeeded" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        check(driver.execute_script("return window.__same_page") == 42,
              "the running job's page showed its success without a reload")
        shot("live")

        # Hostile text renders as text: the job page, the search list, the trace.
        driver.get(base + "/ui/jobs/" + urllib.parse.quote(HOSTILE_ID, safe=""))
        check(HOSTILE_ID in driver.find_element(By.CSS_SELECTOR, "main h1 .id").text,
              "a job ID with <script> is shown as text")
        check(HOSTILE_ERROR in driver.find_element(By.CSS_SELECTOR, "main").text,
              "an error text with <script> is shown as text")
        no_script_ran("the hostile job's page")
        shot("hostile-job")
        driver.find_element(By.CSS_SELECTOR, "a.trace-link").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg.waterfall-chart"))
        check(HOSTILE_TRACE in driver.find_element(By.CSS_SELECTOR, "main h1").text, "a hostile trace ID is text")
        no_script_ran("the hostile trace's page")
        driver.get(base + "/ui/jobs?job=HostileJob")
        check(HOSTILE_ID in driver.find_element(By.CSS_SELECTOR, "table.jobs").text, "the hostile job is listed as text")
        no_script_ran("the job list")
        driver.get(base + "/ui/entities/user%3A666")
        no_script_ran("the hostile job's entity page")
        driver.get(base + "/ui/")
        no_script_ran("the overview with a hostile dead job")
        shot("overview-after")

        # The blast radius: from the overview, what the failed and dead jobs touched; an entity's
        # link to its page; from a search, the same filters' blast radius.
        driver.find_element(By.CSS_SELECTOR, "a.impact-link").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Blast radius")
        summary = driver.find_element(By.CSS_SELECTOR, "main p.summary").text
        check(" jobs matched, " in summary and " distinct entit" in summary, f"the blast radius says what matched ({summary!r})")
        entities = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.impact a.entity")]
        check("user:666" in entities, f"the blast radius lists the hostile dead job's entity ({entities})")
        check(HOSTILE_ID in driver.find_element(By.CSS_SELECTOR, "table.impact").text,
              "the blast radius shows a hostile job ID as text")
        no_script_ran("the blast radius")
        shot("impact")
        driver.find_element(By.LINK_TEXT, "user:666").click()
        wait.until(lambda d: "user:666" in d.find_element(By.CSS_SELECTOR, "main h1").text)
        check(HOSTILE_ID in driver.find_element(By.CSS_SELECTOR, "table.jobs").text,
              "an entity of the blast radius links its page, which lists its job")
        no_script_ran("the entity page from the blast radius")
        driver.get(base + "/ui/jobs?" + urllib.parse.urlencode({"state": "dead", "job": "HostileJob", "queue": "default"}))
        driver.find_element(By.CSS_SELECTOR, "a.impact-link").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "main h1").text == "Blast radius")
        check(driver.find_element(By.NAME, "job").get_attribute("value") == "HostileJob" and
              driver.find_element(By.NAME, "state").get_attribute("value") == "dead" and
              [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.impact a.entity")] == ["user:666"],
              "a search's blast-radius link carries its class and state")

        # Every link of every page answers 200 (the crawl follows console pages two levels deep).
        seen = {}
        frontier = ["/ui/", "/ui/checks", "/ui/jobs", "/ui/jobs?anomalies=1",
                    "/ui/traces/4bf92f3577b34da6a3ce929d0e0e4736", "/ui/jobs/payment-2017-08-2",
                    "/ui/entities/user%3A42", "/ui/jobs/" + urllib.parse.quote(HOSTILE_ID, safe=""),
                    "/ui/impact", "/ui/impact?state=failed%2Cdead&limit=3"]
        for depth in range(3):
            following = []
            for path in frontier:
                if path in seen or len(seen) > 400:
                    continue
                status, headers, body = request(base, path, token=TOKEN)
                seen[path] = status
                if status != 200:
                    fail(f"GET {path} answered {status}")
                if not headers.get("Content-Type", "").startswith("text/html"):
                    continue
                links = Links()
                links.feed(body)
                for link in links.links:
                    check_link = urllib.parse.urlsplit(link)
                    if check_link.scheme or check_link.netloc:
                        fail(f"{path} links off the server: {link}")
                    following.append(link)
            frontier = following
        broken = {p: s for p, s in seen.items() if s != 200}
        check(not broken and len(seen) > 30, f"every link of every page answers 200 ({len(seen)} URLs)")
    finally:
        if driver is not None:
            driver.quit()
        serve.terminate()
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("browser_test.py: every check passed; screenshots in " + args.artifacts)


if __name__ == "__main__":
    main()
