"""Run the same code in several OS processes at the same instant: the harness of the concurrency tests.

A race between two writers only shows when they really overlap, so every test of a lock or a
constraint needs real processes (each with its own database connection) released together.
This module is the one way to do it, for the core's tests and for plugin authors:

- :func:`run_in_processes` calls ``target(index, *args)`` in ``n`` processes that wait at a
  start barrier, and returns one :class:`ProcessResult` per process (exit code, return value,
  traceback text if the target raised), in index order.
- :func:`run_cli_in_processes` runs one ``crm`` command line per process (the real CLI, in the
  child, with the given plugins registered in code) and returns a :class:`CliResult` per command
  (exit code, stdout, stderr), in command order.

Processes are forked by default (Linux): they start in milliseconds because the code is already
imported, and arguments need not be picklable; return values go back through a queue and must
be picklable. Each child opens its own engine; it never uses the parent's connections (a forked
child leaves with ``os._exit``, so the parent's pooled connections are not closed by it).

Example (two admins deactivating each other at once)::

    results = run_cli_in_processes(url, [["user", "deactivate", "b"], ["user", "deactivate", "a"]],
                                   users=["a", "b"])
    assert sorted(r.code for r in results) == [0, 1]
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import queue as queue_module
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CliResult", "ProcessResult", "run_cli_in_processes", "run_in_processes"]


@dataclass(frozen=True)
class ProcessResult:
    """What one process did: ``exitcode`` (None if it had to be killed at the timeout), the
    target's return ``value`` and, if it raised, the traceback text in ``error``."""

    index: int
    exitcode: int | None
    value: Any = None
    error: str | None = None


@dataclass(frozen=True)
class CliResult:
    """One ``crm`` command run by :func:`run_cli_in_processes`."""

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _child(index: int, barrier: Any, out: Any, target: Callable[..., Any], args: tuple[Any, ...],
           wait: float) -> None:
    """Wait for every sibling, run the target, report (index, value, error)."""
    try:
        barrier.wait(timeout=wait)
        value, error = target(index, *args), None
    except BaseException:  # noqa: BLE001 - the parent reports it, with the traceback
        value, error = None, traceback.format_exc()
    out.put((index, value, error))


def run_in_processes(n: int, target: Callable[..., Any], *args: Any, timeout: float = 180.0,
                     start_method: str = "fork") -> list[ProcessResult]:
    """Call ``target(i, *args)`` for i in 0..n-1, each in its own process, all released at once.

    Waits for every process (at most ``timeout`` seconds in all; a process still running then
    is killed and reported with ``exitcode`` None). Results are in index order.
    """
    if n < 1:
        raise ValueError("run_in_processes needs at least one process")
    ctx: Any = mp.get_context(start_method)  # BaseContext's stubs lack the context's Process
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(i, barrier, out, target, args, timeout), daemon=True)
             for i in range(n)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    got: dict[int, tuple[Any, str | None]] = {}
    while len(got) < n:  # drain the queue before joining: a child blocks until its result is read
        try:
            i, value, error = out.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            got[i] = (value, error)
        except queue_module.Empty:
            if time.monotonic() > deadline or (all(not p.is_alive() for p in procs) and out.empty()):
                break
    results = []
    for i, p in enumerate(procs):
        p.join(timeout=max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(5)
            code = None
        else:
            code = p.exitcode
        value, error = got.get(i, (None, "no result: the process died or timed out"))
        results.append(ProcessResult(i, code, value, error))
    out.close()
    return results


def _cli_target(index: int, url: str, commands: Sequence[Sequence[str]], users: Sequence[str],
                plugins: tuple[object, ...]) -> tuple[int, str, str]:
    """Run one ``crm`` command line in this process: (exit code, stdout, stderr)."""
    from crmcore.cli import build_cli

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            build_cli(plugins).main(args=["--database", url, "--user", users[index], *commands[index]], prog_name="crm")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def run_cli_in_processes(url: str, commands: Sequence[Sequence[str]], *, users: str | Sequence[str] = "tester",
                         plugins: Sequence[object] = (), timeout: float = 180.0) -> list[CliResult]:
    """Run each command line (``["customer", "merge", "A", "--into", "B"]``) as ``crm`` in its own
    process, all at once, against ``url``, as ``users`` (one name, or one per command).

    A process that crashed or hung is reported with code -1 and the traceback (or "timeout") in
    stderr, so a test sees it as a failure like any other.
    """
    names = [users] * len(commands) if isinstance(users, str) else list(users)
    if len(names) != len(commands):
        raise ValueError("give one user, or one user per command")
    cmds = [list(c) for c in commands]
    raw = run_in_processes(len(cmds), _cli_target, url, cmds, names, tuple(plugins), timeout=timeout)
    results = []
    for cmd, r in zip(cmds, raw, strict=True):
        if r.value is None:
            results.append(CliResult(tuple(cmd), -1, "", r.error or f"process ended with exit code {r.exitcode}"))
        else:
            code, stdout, stderr = r.value
            results.append(CliResult(tuple(cmd), code, stdout, stderr))
    return results
