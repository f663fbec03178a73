#!/usr/bin/env python3
"""Seed corpora for the fuzz harnesses, taken from the docs, so the fuzzers start from what
users are told to send and write. Usage: make_seeds.py SOURCE_DIR OUT_DIR
Writes OUT_DIR/<harness>/seed-N files (one input each); existing files are kept."""
import json
import pathlib
import re
import sys

source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])


def blocks(path, language):
    """The fenced code blocks of one language in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return re.findall(r"```" + language + r"\n(.*?)```", text, re.S)


def write(harness, seeds):
    folder = out / harness
    folder.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(dict.fromkeys(seeds)):  # dedupe, keep order
        (folder / f"seed-{number}").write_bytes(seed if isinstance(seed, bytes) else seed.encode())


docs = sorted((source / "docs").glob("*.md"))
all_text = "\n".join(path.read_text(encoding="utf-8") for path in docs)

# The decoder: each example event, the examples as NDJSON and as an array, and one of each
# with a pretty-printed object.
events = [line for block in blocks(source / "docs/events.md", "json") for line in block.splitlines() if line.strip()]
ingest = list(events)
ingest.append("\n".join(events) + "\n")
ingest.append("[" + ",".join(events) + "]")
ingest.extend(json.dumps(json.loads(line), indent=2) for line in events[:2])
ingest.extend(re.findall(r"--data-binary \$'(.*?)'", all_text))
write("ingest", ingest)

write("traceparent", re.findall(r"\b[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\b", all_text))

# The grammar: every duration and time the docs mention, in code spans.
spans = re.findall(r"`([^`\n]{1,40})`", all_text)
durations = [s for s in spans if re.fullmatch(r"[0-9][0-9.a-zµ]*", s)]
durations += re.findall(r"\b(?:\d+(?:\.\d+)?(?:ms|us|µs|s|m|h|d))+\b", all_text)
times = re.findall(r"\b\d{4}-\d\d-\d\d(?:[T ][0-9:.]+(?:Z|[+-]\d\d:\d\d)?)?", all_text)
write("time_grammar", durations + times + ["1h30m", "1.5h", "850us", "850µs", "2026-11-22T10:00:00+01:00"])

configs = [(source / "examples/checks.yaml").read_text(encoding="utf-8")]
configs += blocks(source / "docs/checks.md", "yaml")
write("check_config", configs)

# The table: cells in the harness's own layout are made by the fuzzer; these start it with
# the bytes that matter (escapes, C1 controls, invalid UTF-8, wide and combining text).
write("table", [b"\x03\x01head\x00\x02row\x1b]0;title\x07\x05\x07\x9b31m\xc2\x9b\xff\xfe",
                "\x02\x00job\x00state\x01\x02µs ✓ 日本 e\u0301\x00\n\t\r".encode(),
                b"\x01\x01" + "".join(events[:3]).encode()])
