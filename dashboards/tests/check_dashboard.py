#!/usr/bin/env python3
"""Checks that a Grafana dashboard JSON is importable anywhere: a current schemaVersion, a
datasource variable, every panel and target on that variable (no hard-coded datasource UID),
unique panel IDs, and a jobtrail metric in every query (that each one exists is checked
against real output by check_metric_names.py). Usage: check_dashboard.py FILE"""
import json
import re
import sys

MIN_SCHEMA_VERSION = 36  # Grafana 9.0; current releases write 39 and later


def fail(message):
    print(f"check_dashboard.py: {message}", file=sys.stderr)
    sys.exit(1)


def main(path):
    with open(path, encoding="utf-8") as file:
        dashboard = json.load(file)
    if dashboard.get("schemaVersion", 0) < MIN_SCHEMA_VERSION:
        fail(f"schemaVersion {dashboard.get('schemaVersion')} is older than {MIN_SCHEMA_VERSION}")
    variables = dashboard.get("templating", {}).get("list", [])
    datasource_vars = [v["name"] for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    if not datasource_vars:
        fail("no Prometheus datasource variable in templating")
    wanted = "${" + datasource_vars[0] + "}"
    ids = set()
    metrics = set()
    for panel in dashboard.get("panels", []):
        if panel.get("id") in ids:
            fail(f"panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        for owner in [panel] + panel.get("targets", []):
            uid = owner.get("datasource", {}).get("uid")
            if uid != wanted:
                fail(f"panel '{panel.get('title')}' uses datasource uid {uid!r}, not {wanted}")
        if not panel.get("targets"):
            fail(f"panel '{panel.get('title')}' has no query")
        for target in panel["targets"]:
            names = set(re.findall(r"\bjobtrail_[a-z_]+", target["expr"]))
            if not names:
                fail(f"panel '{panel.get('title')}' queries no jobtrail metric")
            metrics |= names
    print(f"check_dashboard.py: {path}: {len(ids)} panels, {len(metrics)} metrics, datasource {wanted}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_dashboard.py DASHBOARD.json")
    main(sys.argv[1])
