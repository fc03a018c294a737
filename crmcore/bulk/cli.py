"""`crm import`, `crm export`, `crm demo generate`."""
from __future__ import annotations

import csv
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

import click

from crmcore.bulk import exporter, generate
from crmcore.bulk.csv_safety import restore_cell
from crmcore.bulk.importer import DEFAULT_BATCH, ImportResult, RowError, run_import
from crmcore.bulk.readers import FileFormatError, SourceRow, describe_source, detect_format, iter_rows, open_source, parse_mapping
from crmcore.bulk.registry import get_entity
from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.params import SEED
from crmcore.errors import CRMError, InvalidInput

MAX_BATCH = 1_000_000


class UsageProblem(CRMError):
    """A bad option value (a report path that cannot be written, a batch size of 0): exit 2."""

    exit_code = 2


class OutputError(CRMError):
    """The output could not be written (disk full, permission, a directory): exit 1."""


def register(cli: click.Group) -> None:
    cli.add_command(import_)
    cli.add_command(export)
    cli.add_command(demo)


class ErrorReport:
    """Bad rows, written to a CSV report as they are found (opened on the first one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._writer: Any = None
        self.count = 0

    def __call__(self, err: RowError) -> None:
        try:
            if self._file is None:
                self._file = self.path.open("w", newline="", encoding="utf-8", errors="backslashreplace")
                self._writer = csv.writer(self._file)
                self._writer.writerow(["line", "field", "reason", "key"])
            self._writer.writerow([err.line, err.field, err.reason, err.key or ""])
        except OSError as e:
            raise OutputError(f"cannot write the error report {self.path}: {e.strerror or e}") from None
        self.count += 1

    def check(self, source: str) -> None:
        """Refuse, before anything is imported, a report path that cannot be written or is the input."""
        parent = self.path.parent
        if not parent.is_dir():
            raise UsageProblem(f"cannot write the error report {self.path}: directory {parent} does not exist")
        if self.path.is_dir():
            raise UsageProblem(f"cannot write the error report {self.path}: it is a directory")
        if not os.access(parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise UsageProblem(f"cannot write the error report {self.path}: permission denied")
        if source != "-" and self.path.exists() and os.path.exists(source) and os.path.samefile(self.path, source):
            raise UsageProblem(f"the error report {self.path} would overwrite the file being imported")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def restored(rows: Iterable[SourceRow]) -> Iterator[SourceRow]:
    """Undo the formula neutralisation of our CSV export (a leading ' before =, +, -, @ …)."""
    for row in rows:
        for v in row.data.values():
            if v and v[0] == "'":  # CSV values are str or None
                data = {k: restore_cell(v) if v and v[0] == "'" else v for k, v in row.data.items()}
                row = SourceRow(row.line, data, row.error)
                break
        yield row


def _progress_import(crm: Any, entity: str, rows: Iterable[SourceRow], **kw: Any) -> ImportResult:
    if not sys.stderr.isatty():
        return run_import(crm, entity, rows, **kw)
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
                  TextColumn("{task.fields[rate]:,.0f} rows/s"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"importing {entity}", total=None, rate=0.0)

        def on_batch(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[0]
            progress.update(task, rate=(t.completed / t.elapsed) if t.elapsed else 0.0)

        outer = kw.pop("on_batch", lambda n: None)

        def both(n: int) -> None:
            on_batch(n)
            outer(n)

        return run_import(crm, entity, rows, on_batch=both, **kw)


@click.command("import", cls=click.Command)
@click.argument("entity", metavar="ENTITY")
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="default: from the file extension")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--map", "mapping", multiple=True, metavar="SOURCE=FIELD", help="read column SOURCE as FIELD")
@click.option("--strict", is_flag=True, help="write nothing if any row is bad")
@click.option("--batch-size", default=DEFAULT_BATCH, show_default=True, type=int, help=f"rows per transaction, 1 to {MAX_BATCH:,}")
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="CSV report of bad rows (default: FILE.errors.csv, or import-errors.csv for stdin)")
@click.option("--ignore-unknown", is_flag=True, help="skip columns that are not import fields instead of failing")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object (after the last commit)")
@pass_app
def import_(app: AppContext, entity: str, file: str, fmt: str | None, encoding: str, mapping: tuple[str, ...], strict: bool,
            batch_size: int, report_path: Path | None, ignore_unknown: bool, as_json: bool) -> None:
    """Import ENTITY (customers, contacts, interactions, transactions, or a plugin's entity) from
    CSV or JSON Lines (FILE, or - for stdin).

    Idempotent: rows are matched by their key (external_ref, or reference for transactions);
    a re-run changes nothing. Bad rows are reported with line, field and reason and skipped
    (with --strict, nothing is written). Exit code 1 when any row was rejected.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise UsageProblem(f"--batch-size must be between 1 and {MAX_BATCH:,}, got {batch_size}")
    crm = app.crm()
    crm.require_initialised()
    spec = get_entity(crm, entity)
    try:
        fmt = detect_format(file, fmt)
        maps = parse_mapping(mapping)
    except (FileFormatError, ValueError) as e:
        raise InvalidInput(str(e)) from None
    report = ErrorReport(report_path or Path("import-errors.csv" if file == "-" else f"{file}.errors.csv"))
    report.check(file)
    try:
        report.path.unlink(missing_ok=True)  # a report left by an earlier run would mislead
    except OSError as e:
        raise UsageProblem(f"cannot replace the error report {report.path}: {e.strerror or e}") from None
    done = [0]  # rows in committed batches, for the message if the file breaks mid-way
    try:
        with open_source(file, format=fmt, encoding=encoding) as stream:
            rows: Iterable[SourceRow] = iter_rows(stream, format=fmt, allowed_fields=spec.all_columns(crm),
                                                  required_fields=spec.required, mapping=maps,
                                                  source_name=describe_source(file), ignore_unknown=ignore_unknown)
            if fmt == "csv":
                rows = restored(rows)
            result = _progress_import(crm, entity, rows, actor=app.actor, batch_size=batch_size, strict=strict,
                                      on_error=report, on_batch=lambda n: done.__setitem__(0, done[0] + n))
    except FileFormatError as e:
        if done[0] and not strict:
            raise InvalidInput(f"{e} ({done[0]} rows before the problem were imported; fix the file and re-run: "
                               "the import is idempotent)") from None
        raise InvalidInput(f"{e} (nothing was imported)") from None
    finally:
        report.close()
    print_outcome(result, report.path, as_json)


def print_outcome(result: ImportResult, report_path: Path, as_json: bool) -> None:
    """The summary on stdout (a line, or one JSON object for scripts), the first problems on
    stderr; exit 1 when a row was rejected."""
    if as_json:
        click.echo(json.dumps({
            "entity": result.entity, "inserted": result.inserted, "updated": result.updated,
            "unchanged": result.unchanged, "rejected": result.rejected, "likely_duplicates": result.warned,
            "committed": result.committed, "seconds": round(result.seconds, 3),
            "error_report": str(report_path) if result.rejected or result.warned else None,
            "first_errors": [{"line": e.line, "field": e.field, "reason": e.reason, "key": e.key}
                             for e in result.first_errors]}, ensure_ascii=False))
    else:
        click.echo(result.summary() + ("" if result.committed else " — rolled back, nothing imported (--strict)"))
    for warning in result.first_warnings[:5]:
        click.echo(f"  line {warning.line}: {warning.field}: {warning.reason}", err=True)
    if result.warned and not result.rejected:
        click.echo(f"likely duplicates (imported; merge with `crm customer merge`): {report_path}", err=True)
    if result.rejected:
        for err in result.first_errors[:5]:
            click.echo(f"  line {err.line}: {err.field}: {err.reason}", err=True)
        if result.rejected > 5:
            click.echo(f"  … {result.rejected - 5} more", err=True)
        click.echo(f"error report: {report_path}", err=True)
        raise SystemExit(1)


def _silence_stdout() -> None:
    """After a failed write to standard output, point it at /dev/null so the interpreter's final
    flush does not print a second error (the Python docs' recipe for SIGPIPE/EPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests): nothing to flush later
        pass


def _os_reason(e: OSError) -> str:
    return e.strerror or str(e)


@contextmanager
def open_output(path: Path) -> Iterator[TextIO]:
    """Open ``path`` for an export the way a shell redirection would, without its risks.

    A regular file (or a new path) is written under a temporary name in the same directory and
    renamed over it at the end, keeping the old file's permissions: it never holds half an
    export. A symlink is followed to its target, as ``>`` does. A character device
    (``/dev/null``, a terminal) or a FIFO is written directly: renaming over it would replace
    the device or pipe with a regular file. A block device, a socket or a directory is refused.
    """
    target = Path(os.path.realpath(path))  # follows every symlink, also to a dangling one's target
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_os_reason(e)}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {path}: it is a directory")
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            raise OutputError(f"cannot write {path}: not a regular file, character device or named pipe")
        try:
            f = open(target, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below, errors mapped
        except OSError as e:
            raise OutputError(f"cannot write {path}: {_os_reason(e)}") from None
        try:
            with f:
                yield f
        except OSError as e:
            raise OutputError(f"cannot write {path}: {_os_reason(e)}") from None
        return
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {path}: directory {target.parent} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_os_reason(e)}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if st is not None:  # keep the replaced file's permissions (and owner, where allowed)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            with suppress(PermissionError, AttributeError):
                os.chown(tmp, st.st_uid, st.st_gid)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # what open() would have created (mkstemp makes 0600)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {_os_reason(e)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@click.command()
@click.argument("entity", metavar="ENTITY")
@click.option("--format", "fmt", type=click.Choice(list(exporter.FORMATS)), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="default: standard output")
@pass_app
def export(app: AppContext, entity: str, fmt: str, output: Path | None) -> None:
    """Export ENTITY in the import column set (streams; CSV cells are formula-safe).

    -o FILE replaces a regular file only once the export is complete; a symlink is followed,
    a device (/dev/null) or a named pipe is written directly.
    """
    crm = app.crm()
    get_entity(crm, entity)  # an unknown entity is refused before any output is opened
    if output is None:
        try:
            exporter.export(crm, entity, sys.stdout, fmt)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise
        except OSError as e:
            _silence_stdout()
            raise OutputError(f"cannot write to standard output: {_os_reason(e)}") from None
        return
    with open_output(output) as f:
        n = exporter.export(crm, entity, f, fmt)
    click.echo(f"exported {n} {entity} to {output}", err=True)


@click.group(cls=CRMGroup)
def demo() -> None:
    """Synthetic data for demos and benchmarks."""


@demo.command("generate")
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--transactions", default=20000, show_default=True, type=click.IntRange(0, 100_000_000))
@click.option("--interactions", default=None, type=click.IntRange(0, 100_000_000), help="default: 2 per customer")
@click.option("--seed", default=42, show_default=True, type=SEED)
@click.option("--batch-size", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1, 1_000_000))
@pass_app
def demo_generate(app: AppContext, customers: int, transactions: int, interactions: int | None, seed: int,
                  batch_size: int) -> None:
    """Generate customers, interactions and transactions through the normal import path.

    Reproducible with --seed; revenue is Pareto-skewed (few customers make most of it).
    """
    crm = app.crm()
    plan = [
        ("customers", generate.customer_rows(customers, seed)),
        ("interactions", generate.interaction_rows(customers * 2 if interactions is None else interactions, customers, seed)),
        ("transactions", generate.transaction_rows(transactions, customers, seed)),
    ]
    done: list[str] = []
    for entity, records in plan:
        rows = (SourceRow(i + 1, r) for i, r in enumerate(records))
        result = _progress_import(crm, entity, rows, actor=app.actor, batch_size=batch_size)
        click.echo(result.summary())
        if result.rejected:  # a rule the generator does not meet (a plugin's setting): say what is kept
            for err in result.first_errors[:5]:
                click.echo(f"  line {err.line}: {err.field}: {err.reason}", err=True)
            kept = f"{' and '.join(done)} were imported" if done else "nothing else was imported"
            raise CRMError(f"{result.rejected} generated {entity} were rejected ({result.inserted} imported); {kept}")
        done.append(entity)
