"""The scaffold is the model plugin: what ``crm plugins new`` writes type-checks clean (mypy with the
project's settings), so a new plugin starts inside the house rules."""
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
    assert (package / "services.py").is_file()
    res = subprocess.run([sys.executable, "-m", "mypy", str(package)], cwd=ROOT, capture_output=True, text=True,
                         timeout=900, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout
