"""Write one benchmark's section of bench/RESULTS.md, leaving the other benchmarks' sections."""
from __future__ import annotations

import datetime as dt
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is rewritten by its script; ratios compare our path with a raw baseline measured in the same run.\n"


def write_section(name: str, body: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    stamp = f"_{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()}_"
    section = f"<!-- {name}:start -->\n## {name}\n\n{stamp}\n\n{body.strip()}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text, encoding="utf-8")
