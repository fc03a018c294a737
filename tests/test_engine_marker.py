"""The `engine` marker deselects a test on the other engine: it is neither run nor reported skipped."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = '''
import pytest

@pytest.mark.engine("sqlite")
def test_sqlite_path():
    pass

@pytest.mark.engine("postgresql")
def test_postgresql_path():
    pass

def test_both():
    pass
'''


@pytest.mark.parametrize("url, ran", [
    ("", "test_sqlite_path"),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/never_opened", "test_postgresql_path"),
])
def test_the_other_engines_tests_are_deselected_not_skipped(tmp_path: Path, url: str, ran: str) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    env = {**os.environ, "CRM_TEST_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          str(tmp_path / "test_sample.py")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"test_sample.py::{ran} PASSED" in out.stdout
    assert "test_sample.py::test_both PASSED" in out.stdout
    assert "2 passed, 1 deselected" in out.stdout
    assert "skipped" not in out.stdout
