"""`crm import`, `crm export`, `crm demo generate`."""
from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from crmcore.bulk import exporter, generate
from crmcore.bulk.csv_safety import restore_cell
from crmcore.bulk.importer import DEFAULT_BATCH, ImportResult, RowError, allowed_columns, run_import
from crmcore.bulk.readers import FileFormatError, SourceRow, describe_source, detect_format, iter_rows, open_source, parse_mapping
from crmcore.bulk.specs import SPECS
from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.errors import CRMError, InvalidInput

ENTITY = click.Choice(list(SPECS))


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
        if self._file is None:
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "field", "reason", "key"])
        self._writer.writerow([err.line, err.field, err.reason, err.key or ""])
        self.count += 1

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

        def on_batch(n: int) -> None:  # noqa: F811 - the bar's own callback
            progress.advance(task, n)
            t = progress.tasks[0]
            progress.update(task, rate=(t.completed / t.elapsed) if t.elapsed else 0.0)

        outer = kw.pop("on_batch", lambda n: None)

        def both(n: int) -> None:
            on_batch(n)
            outer(n)

        return run_import(crm, entity, rows, on_batch=both, **kw)


@click.command("import", cls=click.Command)
@click.argument("entity", type=ENTITY)
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="default: from the file extension")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--map", "mapping", multiple=True, metavar="SOURCE=FIELD", help="read column SOURCE as FIELD")
@click.option("--strict", is_flag=True, help="write nothing if any row is bad")
@click.option("--batch-size", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV report of bad rows (default: FILE.errors.csv, or import-errors.csv for stdin)")
@click.option("--ignore-unknown", is_flag=True, help="skip columns that are not import fields instead of failing")
@pass_app
def import_(app: AppContext, entity: str, file: str, fmt: str | None, encoding: str, mapping: tuple[str, ...], strict: bool,
            batch_size: int, report_path: Path | None, ignore_unknown: bool) -> None:
    """Import customers, contacts, interactions or transactions from CSV or JSON Lines (FILE, or - for stdin).

    Idempotent: rows are matched by their key (external_ref, or reference for transactions);
    a re-run changes nothing. Bad rows are reported with line, field and reason and skipped
    (with --strict, nothing is written). Exit code 1 when any row was rejected.
    """
    crm = app.crm()
    crm.require_initialised()
    spec = SPECS[entity]
    try:
        fmt = detect_format(file, fmt)
        maps = parse_mapping(mapping)
    except (FileFormatError, ValueError) as e:
        raise InvalidInput(str(e)) from None
    report = ErrorReport(report_path or Path("import-errors.csv" if file == "-" else f"{file}.errors.csv"))
    report.path.unlink(missing_ok=True)  # a report left by an earlier run would mislead
    done = [0]  # rows in committed batches, for the message if the file breaks mid-way
    try:
        with open_source(file, format=fmt, encoding=encoding) as stream:
            rows: Iterable[SourceRow] = iter_rows(stream, format=fmt, allowed_fields=allowed_columns(crm, entity),
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
    click.echo(result.summary() + ("" if result.committed else " — rolled back, nothing imported (--strict)"))
    if result.rejected:
        for err in result.first_errors[:5]:
            click.echo(f"  line {err.line}: {err.field}: {err.reason}", err=True)
        if result.rejected > 5:
            click.echo(f"  … {result.rejected - 5} more", err=True)
        click.echo(f"error report: {report.path}", err=True)
        raise SystemExit(1)


@click.command()
@click.argument("entity", type=ENTITY)
@click.option("--format", "fmt", type=click.Choice(list(exporter.FORMATS)), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="default: standard output")
@pass_app
def export(app: AppContext, entity: str, fmt: str, output: Path | None) -> None:
    """Export ENTITY in the import column set (streams; CSV cells are formula-safe)."""
    crm = app.crm()
    if output is None:
        exporter.export(crm, entity, sys.stdout, fmt)
        return
    if not output.parent.is_dir():
        raise InvalidInput(f"cannot write {output}: directory {output.parent} does not exist")
    tmp = output.with_name(output.name + ".part")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            n = exporter.export(crm, entity, f, fmt)
        tmp.replace(output)  # never leave a half-written export under the real name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    click.echo(f"exported {n} {entity} to {output}", err=True)


@click.group(cls=CRMGroup)
def demo() -> None:
    """Synthetic data for demos and benchmarks."""


@demo.command("generate")
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--transactions", default=20000, show_default=True, type=click.IntRange(0, 100_000_000))
@click.option("--interactions", default=None, type=click.IntRange(0, 100_000_000), help="default: 2 per customer")
@click.option("--seed", default=42, show_default=True, type=int)
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
    for entity, records in plan:
        rows = (SourceRow(i + 1, r) for i, r in enumerate(records))
        result = _progress_import(crm, entity, rows, actor=app.actor, batch_size=batch_size)
        click.echo(result.summary())
        if result.rejected:
            raise CRMError(f"generated {entity} were rejected: {result.first_errors[:3]}")
