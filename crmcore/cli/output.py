"""Human (rich tables) and machine (``--json``) output, and turning input errors into one line."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from crmcore.errors import invalid_input
from crmcore.services._base import jsonable

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], **data: Any) -> M:
    """Build a schema from CLI options; pydantic's errors become one readable InvalidInput."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as e:
        raise invalid_input(e) from None


def console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    n = 0
    for r in rows:
        t.add_row(*["" if v is None else str(jsonable(v)) for v in r])
        n += 1
    console().print(t)
    if n == 0:
        click.echo("(none)")


def fields(title: str, data: dict[str, Any]) -> None:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in data.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(jsonable(x)) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={jsonable(b)}" for a, b in v.items())
        t.add_row(k, "" if v is None else str(jsonable(v)))
    console().print(t)
