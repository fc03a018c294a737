"""The scaffold is the model plugin: what ``crm plugins new`` writes type-checks clean (mypy with the
project's settings) and passes ruff (the house rules, which the generated pyproject carries), so a
new plugin starts inside them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crmcore.scaffold import new_plugin

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.engine("sqlite")  # no database involved: once per suite is enough
def test_a_scaffolded_plugin_is_mypy_clean(tmp_path: Path) -> None:
    new_plugin("tickets", tmp_path)
    package = tmp_path / "crm-tickets" / "crm_tickets"
    for module in ("settings", "services", "views", "routes", "bulk", "cli", "testing"):
        assert (package / f"{module}.py").is_file(), module
    res = subprocess.run([sys.executable, "-m", "mypy", str(package)], cwd=ROOT, capture_output=True, text=True,
                         timeout=900, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout


@pytest.mark.engine("sqlite")
def test_a_scaffolded_plugin_is_ruff_clean(tmp_path: Path) -> None:
    new_plugin("tickets", tmp_path)
    project = tmp_path / "crm-tickets"
    assert "[tool.ruff]" in (project / "pyproject.toml").read_text()  # its own copy of the house rules
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project, capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "All checks passed" in res.stdout
