"""Start-up benchmark: CPU time of `crm --help`, `crm --version` and the commands that open the
database (`crm customer list`, `crm customer show`), against `python -c "import click"` (the raw
floor of any click program) and the libraries such a command cannot do without (SQLAlchemy's
ORM, pydantic's models, rich's tables: the floor of a command that lists customers).

    .venv/bin/python bench/startup_bench.py [--runs 7]

CPU time (user + system) of each child process, the median of ``--runs`` runs, so a busy
machine's waiting does not count; the wall time (median) and the load average are reported too.
The goal is under 0.3 s for --help and --version: the core's command modules, SQLAlchemy and
the plugins are imported only when a command needs them. Writes its section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

GOAL = 0.3


FLOOR_IMPORTS = "import click, sqlalchemy.orm, rich.console, rich.table; from pydantic import BaseModel"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(user + system CPU seconds, wall seconds) of one child process (os.wait4's resource usage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one child process."""
    return timed(argv, env)[0]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    crm = str(Path(python).parent / "crm")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # any value, even "0", turns the .pyc cache off
        subprocess.run([crm, "--database", url, "init"], env=env, check=True, capture_output=True)
        subprocess.run([crm, "--database", url, "customer", "add", "Acme Ltd"], env=env, check=True, capture_output=True)
        cases = [
            ('python -c "import click" (raw floor)', [python, "-c", "import click"]),
            ("python -c: click, SQLAlchemy ORM, pydantic models, rich tables (floor of a listing)",
             [python, "-c", FLOOR_IMPORTS]),
            ("crm --version", [crm, "--version"]),
            ("crm --help", [crm, "--help"]),
            ("crm customer --help", [crm, "customer", "--help"]),
            ("crm customer list (opens the database)", [crm, "--database", url, "customer", "list"]),
            ("crm customer show #1", [crm, "--database", url, "customer", "show", "#1"]),
        ]
        for _, argv in cases:  # warm the bytecode caches once
            timed(argv, env)
        load_before = load_average()
        results = []
        for label, argv in cases:
            runs = [timed(argv, env) for _ in range(args.runs)]
            results.append((label, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))
        load_after = load_average()
    floor = results[0][1]
    rows = ["| command | CPU s (median) | wall s (median) | × raw floor (CPU) |", "|---|---:|---:|---:|"]
    for label, s, wall in results:
        rows.append(f"| `{label}` | {s:.3f} | {wall:.3f} | {s / floor:.1f} |")
    verdict = all(s < GOAL for label, s, _ in results if label in ("crm --help", "crm --version"))
    body = "\n".join([
        f"CPU time (user + system) and wall time of each process, median of {args.runs} runs after one warm-up "
        f"run; load average {load_before} before, {load_after} after (2 cores: a wall time above the CPU "
        f"time is waiting for a core). Goal: `crm --help` and `crm --version` under {GOAL} s — "
        + ("met." if verdict else "**not met**."),
        "",
        *rows,
        "",
        "`--help` and `--version` import click, pluggy and pydantic (errors) only; a command imports its "
        "own module, and one that opens the database also SQLAlchemy, the core's models and the enabled "
        "plugins' hook modules (bench/plugin_startup_bench.py: five plugins).",
    ])
    write_section("startup", body)
    print(body)


if __name__ == "__main__":
    main()
