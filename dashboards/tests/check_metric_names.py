#!/usr/bin/env python3
"""Every metric a rule or the dashboard names must exist in what jobtrail really exports.

Usage: check_metric_names.py RULES.yml DASHBOARD.json METRICS.txt [METRICS.txt ...]
where each METRICS.txt is real exposition text (a scrape of `jobtrail serve`'s /metrics, a
checker textfile). Histogram series (_bucket, _sum, _count) count as their family."""
import json
import re
import sys

NAME = re.compile(r"\bjobtrail_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def names_in_rules(path):
    names = set()
    with open(path, encoding="utf-8") as file:
        for line in file:
            stripped = line.strip()
            if stripped.startswith("#"):
                continue
            # Only expressions name metrics; annotations may mention them in prose too, and
            # those must exist as well, so every line counts.
            names |= set(NAME.findall(stripped))
    return names


def names_in_dashboard(path):
    with open(path, encoding="utf-8") as file:
        dashboard = json.load(file)
    names = set()
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            names |= set(NAME.findall(target.get("expr", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        names |= set(NAME.findall(json.dumps(variable.get("query", ""))))
    return names


def exported_families(paths):
    families = {}
    for path in paths:
        with open(path, encoding="utf-8") as file:
            for line in file:
                match = re.match(r"# TYPE (\S+) (\S+)", line)
                if match:
                    families[match.group(1)] = match.group(2)
    return families


def family_of(name, families):
    if name in families:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and families.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return None


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    rules, dashboard, metrics = argv[1], argv[2], argv[3:]
    families = exported_families(metrics)
    if not families:
        print(f"check_metric_names.py: no metric families in {metrics}", file=sys.stderr)
        return 1
    wanted = {name: "rules" for name in names_in_rules(rules)}
    for name in names_in_dashboard(dashboard):
        wanted[name] = "dashboard" if name not in wanted else wanted[name] + "+dashboard"
    missing = sorted((name, where) for name, where in wanted.items() if family_of(name, families) is None)
    for name, where in missing:
        print(f"check_metric_names.py: {name} (named in the {where}) is not exported", file=sys.stderr)
    if missing:
        return 1
    print(f"check_metric_names.py: all {len(wanted)} metric names of the rules and the dashboard are exported "
          f"({len(families)} families seen)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
