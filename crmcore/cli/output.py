"""Human (rich tables) and machine (``--json``) output, and turning input errors into one line.

Stored text is shown, never obeyed: names may hold terminal escape sequences, C1 controls or
bidi overrides (from an import, a plugin, an older version) and rich markup such as ``[/x]``.
Tables, field views and the one-line messages of the core commands print :func:`safe` text:
controls and bidi/invisible format characters become visible escapes (``\\x1b``, ``\\u202e``),
and cells are rich ``Text`` objects, so ``[bold]`` is printed as written. ``--json`` stays exact.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from crmcore.errors import invalid_input
from crmcore.services._base import jsonable

if TYPE_CHECKING:  # rich is imported when a table is printed: a --json or one-line command does without it
    from rich.console import Console
    from rich.text import Text

M = TypeVar("M", bound=BaseModel)

# C0 controls (tab and line breaks too: a table cell is one line), DEL, C1 controls (0x9b is a
# one-byte CSI on some terminals), bidi embeddings/overrides/isolates and marks, zero-width and
# other invisible format characters, line/paragraph separators, lone surrogates, BOM.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe(value: Any) -> str:
    """``value`` as text fit for a terminal: unsafe characters escaped (see the module doc)."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def validate(model: type[M], **data: Any) -> M:
    """Build a schema from CLI options; pydantic's errors become one readable InvalidInput."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as e:
        raise invalid_input(e) from None


def console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


def echo(message: str) -> None:
    """One line for the user, with stored text escaped (use it for messages naming records)."""
    click.echo(safe(message))


def cell(value: Any) -> Text:
    """A table cell: escaped, and a rich Text so markup in stored data is printed, not applied."""
    from rich.text import Text

    if value is None:
        return Text("")
    return Text(safe(jsonable(value)))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=None if title is None else Text(safe(title)), show_lines=False)
    for c in columns:
        t.add_column(Text(safe(c)), overflow="fold")
    n = 0
    for r in rows:
        t.add_row(*[cell(v) for v in r])
        n += 1
    console().print(t)
    if n == 0:
        click.echo("(none)")


def fields(title: str, data: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(safe(title)), show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in data.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(jsonable(x)) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={jsonable(b)}" for a, b in v.items())
        t.add_row(cell(k), cell(v))
    console().print(t)
