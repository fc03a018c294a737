"""Where a CLI call's start-up goes with the five plugins enabled: CPU time of `crm customer list`
with the plugins enabled and blocked, against `python -c "import click"` (the raw floor), and
``python -X importtime`` of the enabled run summed per top-level package, and which of the heavy
libraries (numpy, scipy, psycopg, alembic, FastAPI, ...) the run imports: none, since the
plugins import their work modules inside the hooks that use them and register their tables when
the schema is first read (``defer_models``; tests/test_startup_imports.py).

    .venv/bin/python bench/plugin_startup_bench.py [--runs 5]

CPU time (user + system) of each child, the median of ``--runs`` runs: waiting on a busy machine
does not count; the wall time (median) and the load average are reported too. Writes its section
of bench/RESULTS.md.
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
from startup_bench import FLOOR_IMPORTS, load_average, timed

PLUGINS = ("credit", "marketing", "sales_automation", "service", "value_analysis")
GOAL = 0.5
HEAVY = ("numpy", "scipy", "pandas", "sklearn", "optbinning", "lark", "jinja2", "fastapi", "alembic", "psycopg")
PLUGIN_MODELS = tuple(f"crm_{p}.models" for p in PLUGINS)


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


PROBE = ("import atexit, sys; atexit.register(lambda: print('MODULES', *sorted(sys.modules), file=sys.stderr)); "
         "from crmcore.cli import main; main(['customer', 'list'])")


def imported_modules(python: str, env: dict[str, str]) -> set[str]:
    """Every module in ``sys.modules`` at the end of ``crm customer list``."""
    r = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    line = next(x for x in r.stderr.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


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
            ("python -c: click, SQLAlchemy ORM, pydantic models, rich tables (floor of a listing)",
             [python, "-c", FLOOR_IMPORTS], env),
            ("crm customer list, plugins blocked", [crm, "customer", "list"], blocked),
            ("crm customer list, five plugins enabled", [crm, "customer", "list"], env),
            ("crm customer show #1, plugins blocked", [crm, "customer", "show", "#1"], blocked),
            ("crm customer show #1, five plugins enabled", [crm, "customer", "show", "#1"], env),
        ]
        for _, argv, e in cases:  # warm the bytecode caches once
            timed(argv, e)
        load_before = load_average()
        results = []
        for label, argv, e in cases:
            runs = [timed(argv, e) for _ in range(args.runs)]
            results.append((label, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))
        load_after = load_average()
        profile = import_profile([python, "-c", "from crmcore.cli import main; main(['customer', 'list'])"], env)
        modules = imported_modules(python, env)
    floor = results[0][1]
    rows = [f"Load average {load_before} before the timed runs, {load_after} after (2 cores: a wall time above "
            "the CPU time is waiting for a core).", "",
            "| command | CPU s (median) | wall s (median) | × raw floor (CPU) |", "|---|---:|---:|---:|"]
    rows += [f"| `{label}` | {s:.3f} | {wall:.3f} | {s / floor:.1f} |" for label, s, wall in results]
    total = sum(profile.values())
    top = sorted(profile.items(), key=lambda kv: -kv[1])[:12]
    rows += ["", f"Import time of the enabled run by top-level package (self time, {total:.2f} s in all; "
             "slower than CPU time: the profiler's own cost):", "",
             "| package | import s | share |", "|---|---:|---:|"]
    rows += [f"| {name} | {s:.3f} | {100 * s / total:.0f}% |" for name, s in top]
    heavy = sorted(set(HEAVY) & set(profile))
    rows += ["", "Heavy libraries imported by the enabled `crm customer list`: " + (", ".join(heavy) if heavy else "none") + "."]
    mapped = sorted(set(PLUGIN_MODELS) & modules)
    rows += ["", "Plugin models modules it imports (tables mapped): " + (", ".join(mapped) if mapped else "none") + "."]
    enabled = next(s for label, s, _ in results if label == "crm customer list, five plugins enabled")
    rows += ["", f"Goal: a CLI call under {GOAL} s with the plugins enabled — "
             + ("met." if enabled < GOAL else f"not met ({enabled:.2f} s): see the shares above.")]
    body = "\n".join(rows)
    print(body)
    write_section("plugin_startup", body)


if __name__ == "__main__":
    main()
