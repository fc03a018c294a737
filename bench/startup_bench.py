"""Start-up benchmark: CPU time of `crm --help`, `crm --version` and a command that opens the
database, against `python -c "import click"` (the raw floor of any click program).

    .venv/bin/python bench/startup_bench.py [--runs 7]

CPU time (user + system) of each child process, the median of ``--runs`` runs, so a busy
machine's waiting does not count. The goal is under 0.3 s for --help and --version: the core's
command modules, SQLAlchemy and the plugins are imported only when a command needs them.
Writes its section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

GOAL = 0.3


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one child process (os.wait4's resource usage)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


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
        cases = [
            ('python -c "import click" (raw floor)', [python, "-c", "import click"]),
            ("crm --version", [crm, "--version"]),
            ("crm --help", [crm, "--help"]),
            ("crm customer --help", [crm, "customer", "--help"]),
            ("crm customer list (opens the database)", [crm, "--database", url, "customer", "list"]),
        ]
        for _, argv in cases:  # warm the bytecode caches once
            cpu_seconds(argv, env)
        results = [(label, statistics.median(cpu_seconds(argv, env) for _ in range(args.runs))) for label, argv in cases]
    floor = results[0][1]
    rows = ["| command | CPU s (median) | × raw floor |", "|---|---:|---:|"]
    for label, s in results:
        rows.append(f"| `{label}` | {s:.3f} | {s / floor:.1f} |")
    verdict = all(s < GOAL for label, s in results if label in ("crm --help", "crm --version"))
    body = "\n".join([
        f"CPU time (user + system) of each process, median of {args.runs} runs after one warm-up run. "
        f"Goal: `crm --help` and `crm --version` under {GOAL} s — "
        + ("met." if verdict else "**not met**."),
        "",
        *rows,
        "",
        "`--help` and `--version` import click, pluggy and pydantic (errors) only; a command imports its "
        "own module, and one that opens the database also SQLAlchemy, the models and the enabled plugins.",
    ])
    write_section("startup", body)
    print(body)


if __name__ == "__main__":
    main()
