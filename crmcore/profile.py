"""Objects plugins contribute to the customer 360° view (``crm customer show``)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProfileTable:
    """Rows with named columns inside a section (open opportunities, dunning letters, ...).

    Cells must be JSON-serialisable for ``--json``; every row has one cell per column.
    """

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for n, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: row {n} has {len(row)} cells for {len(self.columns)} columns")


@dataclass
class ProfileSection:
    """A titled block of label → value pairs and tables; everything JSON-serialisable for ``--json``."""

    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    tables: list[ProfileTable] = field(default_factory=list)


@dataclass
class TimelineEntry:
    """One dated event a plugin adds to the customer's timeline (merged with the interactions by date)."""

    at: dt.datetime
    kind: str
    summary: str
    reference: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.at, dt.datetime):
            if isinstance(self.at, dt.date):
                self.at = dt.datetime(self.at.year, self.at.month, self.at.day, tzinfo=dt.UTC)
            else:
                raise TypeError(f"TimelineEntry.at must be a datetime, not {type(self.at).__name__}")
        elif self.at.tzinfo is None:  # naive is taken as UTC, as the core stores it
            self.at = self.at.replace(tzinfo=dt.UTC)
        else:
            self.at = self.at.astimezone(dt.UTC)
