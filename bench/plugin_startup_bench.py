"""Where a CLI call's start-up goes with the five plugins enabled: CPU time of `crm customer list`
with the plugins enabled and blocked, against `python -c "import click"` (the raw floor), and
``python -X importtime`` of the enabled run summed per top-level package, and which of the heavy
libraries (numpy, scipy, psycopg, alembic, FastAPI, ...) the run imports: none, since the
plugins import their work modules inside the hooks that use them (tests/test_startup_imports.py).

    .venv/bin/python bench/plugin_startup_bench.py [--runs 5]

CPU time (user + system) of each child, the median of ``--runs`` runs: waiting on a busy machine
does not count. Writes its section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section
from startup_bench import cpu_seconds

PLUGINS = ("credit", "marketing", "sales_automation", "service", "value_analysis")
GOAL = 0.5
HEAVY = ("numpy", "scipy", "pandas", "sklearn", "optbinning", "lark", "jinja2", "fastapi", "alembic", "psycopg")


def import_profile(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Self import time (s) per top-level package, from ``-X importtime`` (all imported packages)."""
    r = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True, check=True)
    per: dict[str, float] = defaultdict(float)
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (p.strip() for p in line.removeprefix("import time:").split("|"))
        per[name.split(".")[0]] += int(self_us) / 1e6
    return dict(per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    crm = str(Path(python).parent / "crm")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env["CRM_DATABASE_URL"] = url
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # any value, even "0", turns the .pyc cache off
        subprocess.run([crm, "init"], env=env, check=True, capture_output=True)
        for p in PLUGINS:
            subprocess.run([crm, "plugins", "enable", p], env=env, check=True, capture_output=True)
        subprocess.run([crm, "customer", "add", "Acme Ltd"], env=env, check=True, capture_output=True)
        blocked = {**env, "CRM_DISABLE_PLUGINS": ",".join(PLUGINS)}
        cases = [
            ('python -c "import click" (raw floor)', [python, "-c", "import click"], env),
            ("crm customer list, plugins blocked", [crm, "customer", "list"], blocked),
            ("crm customer list, five plugins enabled", [crm, "customer", "list"], env),
            ("crm customer show #1, five plugins enabled", [crm, "customer", "show", "#1"], env),
        ]
        for _, argv, e in cases:  # warm the bytecode caches once
            cpu_seconds(argv, e)
        results = [(label, statistics.median(cpu_seconds(argv, e) for _ in range(args.runs))) for label, argv, e in cases]
        profile = import_profile([python, "-c", "from crmcore.cli import main; main(['customer', 'list'])"], env)
    floor = results[0][1]
    rows = ["| command | CPU s (median) | × raw floor |", "|---|---:|---:|"]
    rows += [f"| `{label}` | {s:.3f} | {s / floor:.1f} |" for label, s in results]
    total = sum(profile.values())
    top = sorted(profile.items(), key=lambda kv: -kv[1])[:12]
    rows += ["", f"Import time of the enabled run by top-level package (self time, {total:.2f} s in all; "
             "slower than CPU time: the profiler's own cost):", "",
             "| package | import s | share |", "|---|---:|---:|"]
    rows += [f"| {name} | {s:.3f} | {100 * s / total:.0f}% |" for name, s in top]
    heavy = sorted(set(HEAVY) & set(profile))
    rows += ["", "Heavy libraries imported by the enabled `crm customer list`: " + (", ".join(heavy) if heavy else "none") + "."]
    enabled = results[2][1]
    rows += ["", f"Goal: a CLI call under {GOAL} s with the plugins enabled — "
             + ("met." if enabled < GOAL else f"not met ({enabled:.2f} s): see the shares above.")]
    body = "\n".join(rows)
    print(body)
    write_section("plugin_startup", body)


if __name__ == "__main__":
    main()
