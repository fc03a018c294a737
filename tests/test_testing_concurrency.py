"""The multi-process harness itself (crmcore.testing_concurrency): processes really overlap, results
come back in order, a target that raises or a command that fails is reported, not lost."""
from __future__ import annotations

import os
import time

import pytest

from crmcore import CRM
from crmcore.testing_concurrency import run_cli_in_processes, run_in_processes


def _sleep_and_report(index: int, seconds: float) -> tuple[int, int, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return index, os.getpid(), start


def _fail_on_odd(index: int) -> int:
    if index % 2:
        raise RuntimeError(f"process {index} failed")
    return index * 10


def test_processes_start_together_and_report_in_order() -> None:
    results = run_in_processes(4, _sleep_and_report, 0.5)
    assert [r.index for r in results] == [0, 1, 2, 3] and all(r.exitcode == 0 for r in results)
    assert [r.value[0] for r in results] == [0, 1, 2, 3]
    assert len({r.value[1] for r in results} | {os.getpid()}) == 5  # four processes besides this one
    starts = [r.value[2] for r in results]
    assert max(starts) - min(starts) < 0.4  # released by the barrier, not one after the other


def test_a_target_that_raises_is_reported_with_its_traceback() -> None:
    results = run_in_processes(2, _fail_on_odd)
    assert results[0].value == 0 and results[0].error is None
    assert results[1].value is None and "RuntimeError: process 1 failed" in (results[1].error or "")


def test_cli_results_carry_code_and_output(crm: CRM, crm_url: str) -> None:
    results = run_cli_in_processes(crm_url, [["customer", "add", "Acme"], ["customer", "show", "999"]])
    assert results[0].code == 0 and "Acme" in results[0].stdout
    assert results[1].code == 1 and results[1].stderr.strip() == "error: customer 999 not found"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        run_in_processes(0, _fail_on_odd)
    with pytest.raises(ValueError, match="one user per command"):
        run_cli_in_processes("sqlite://", [["customer", "list"]], users=["a", "b"])
