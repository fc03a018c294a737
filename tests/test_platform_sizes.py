"""House rule, checked in CI: no module over 600 lines, no function over 80 (migrations aside).

Covers the core, every plugin package and its tests, the examples, the core's tests, the
scripts and the benchmarks: a room that grows past the limit is split along its seams, not waved
through. A Python file anywhere else in the checkout fails ``test_the_walk_finds_every_tree``.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
PATTERNS = ("crmcore/**/*.py", "plugins/*/crm_*/**/*.py", "plugins/*/tests/**/*.py", "examples/*/crm_*/**/*.py",
            "examples/*/tests/**/*.py", "examples/*.py", "tests/**/*.py", "scripts/**/*.py", "bench/**/*.py")
#: directories that hold no source of the project (the virtualenv, caches, build output)
NOT_SOURCE = ("__pycache__", "node_modules", "build", "dist")


def sources() -> list[Path]:
    found = {p for pattern in PATTERNS for p in ROOT.glob(pattern) if "migrations" not in p.relative_to(ROOT).parts}
    return sorted(found)


def every_python_file() -> set[Path]:
    """Each ``.py`` of the checkout outside hidden directories (``.venv``, ``.git``), caches,
    build output and migrations: what the patterns must cover."""
    found = set()
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in NOT_SOURCE and d != "migrations"
                   and not d.endswith(".egg-info")]
        found.update(Path(top) / f for f in files if f.endswith(".py"))
    return found


def oversized(path: Path) -> list[str]:
    """One line per module or function over the limits (a function counts from ``def`` to its last line)."""
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    problems = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        problems.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{where}:{node.lineno}: function {node.name} has {length} lines (at most {MAX_FUNCTION_LINES})")
    return problems


def test_the_walk_finds_every_tree() -> None:
    found = sources()
    assert len(found) > 300
    for part in ("crmcore/", "plugins/credit/crm_credit/", "plugins/service/tests/", "examples/warranty_plugin/", "tests/",
                 "bench/value_bench.py", "examples/embed.py"):
        assert any(str(p.relative_to(ROOT)).startswith(part) for p in found), part
    assert not any("migrations" in p.parts for p in found)
    missed = sorted(str(p.relative_to(ROOT)) for p in every_python_file() - set(found))
    assert missed == [], f"Python files the size check does not walk (add their tree to PATTERNS): {missed}"


def test_no_module_over_600_lines_and_no_function_over_80() -> None:
    problems = [line for p in sources() for line in oversized(p)]
    assert problems == [], "split these along their seams:\n" + "\n".join(problems)


@pytest.mark.parametrize(("module_lines", "function_lines", "expected"), [
    (600, 80, 0), (601, 10, 1), (100, 81, 1), (700, 90, 2)])
def test_the_check_counts_right(tmp_path: Path, module_lines: int, function_lines: int, expected: int) -> None:
    body = ["def f() -> None:", *["    x = 1"] * (function_lines - 2), "    return None"]
    text = body + ["y = 0"] * (module_lines - len(body))
    path = tmp_path / "m.py"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    assert len(oversized(path)) == expected
