"""The warranty example plugin (examples/warranty_plugin): a customer-facing plugin with its own
table, a status machine, settings, a permission with a new role, a bulk entity, a route, a command
group and a 360° section, in under 60 lines of glue, counted here and stated in the plugin guide."""
from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

from crmcore.testing import TEST_URL_ENV, is_postgres

ROOT = Path(__file__).resolve().parent.parent
WARRANTY = ROOT / "examples" / "warranty_plugin"
GLUE_FILES = ("crm_warranty/plugin.py", "crm_warranty/settings.py", "pyproject.toml")


def code_lines(path: Path) -> list[str]:
    """Lines that do something: no blank lines, comments or docstrings (pyproject: its sections' entries)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    doc_lines: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            first = node.body[0]
            doc_lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    comment_only = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                    if tok.type == tokenize.COMMENT and not text.splitlines()[tok.start[0] - 1].split("#")[0].strip()}
    return [ln for n, ln in enumerate(text.splitlines(), 1)
            if ln.strip() and n not in doc_lines and n not in comment_only]


def glue() -> int:
    return sum(len(code_lines(WARRANTY / f)) for f in GLUE_FILES)


def test_the_glue_is_under_60_lines_and_the_guide_says_how_many() -> None:
    n = glue()
    assert n < 60, n
    guide = (ROOT / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    stated = re.search(r"warranty plugin has (\d+) lines of glue", guide)
    assert stated and int(stated.group(1)) == n, f"the plugin guide must say: warranty plugin has {n} lines of glue"


def test_the_example_uses_only_the_public_sdk() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_sdk_boundary import violations

    problems = [v for p in sorted((WARRANTY / "crm_warranty").rglob("*.py"))
                for v in violations(p.read_text(encoding="utf-8"), p.name)]
    assert problems == []


def test_the_examples_own_tests_pass(tmp_path: Path, empty_database_url: str) -> None:
    from test_docs import clean_env

    env = clean_env(**({TEST_URL_ENV: empty_database_url} if is_postgres() else {}))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
                         check=False, cwd=WARRANTY, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"\b4 passed\b", res.stdout), res.stdout
