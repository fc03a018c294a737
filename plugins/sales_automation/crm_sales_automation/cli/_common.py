"""Option helpers and formatters shared by the ``crm sales`` command modules."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import click

from crmcore.errors import InvalidInput
from crmcore.sdk import table


def _choice(enum: type[StrEnum]) -> click.Choice:
    return click.Choice([m.value for m in enum])


def _json(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(f)


def _date(name: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid input: {name}: {value!r} is not a date (use YYYY-MM-DD)", [(name, "not a date")]) from None


def _money(v: Any) -> str:
    return "" if v is None else f"{v:,.2f}"


def _per_currency(d: dict[str, Any]) -> str:
    return ", ".join(f"{_money(v)} {c}" for c, v in sorted(d.items())) or "–"



def _activity_table(title: str, rows: list[dict[str, Any]]) -> None:
    table(title, ["id", "kind", "subject", "due", "done", "on", "with", "owner"],
          [[a["id"], a["kind"], a["subject"], "" if a["due_at"] is None else a["due_at"].strftime("%Y-%m-%d %H:%M")
            + (" OVERDUE" if a["overdue"] else ""), "" if a["done_at"] is None else a["done_at"].strftime("%Y-%m-%d"),
            f"lead {a['lead_id']}" if a["lead_id"] else f"opp {a['opportunity_id']}" if a["opportunity_id"]
            else f"customer {a['customer_id']}", a.get("contact") or "", a["owner"]] for a in rows])



def _rate_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--to", "to", metavar="CUR", help="convert every amount into this currency (needs --rate)")(f)
    return click.option("--rate", "rates", multiple=True, metavar="CUR=RATE",
                        help="1 CUR = RATE units of --to, e.g. --rate USD=0.92 --to EUR")(f)
