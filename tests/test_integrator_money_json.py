"""Money is a decimal string in every JSON output of the CLI (issue 24 §3): every read command with
``--json`` runs on a small seeded CRM with all five plugins, and the walk of its output fails on a
number in a money field (the bug was floats such as ``14124286.719999986``). A read command with
``--json`` that this test does not run fails it, unless it is listed below with the reason."""
from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from crmcore import CRM
from crmcore.cli import build_cli


def _parity() -> Any:
    """The API parity test's classification of the commands (its READS), loaded by path: one list."""
    spec = importlib.util.spec_from_file_location("crm_api_parity", Path(__file__).with_name("test_api_parity.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_P = _parity()
PLUGINS, READS = _P.PLUGINS, _P.READS


def _leaves(group: click.Group, ctx: click.Context, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command of the tree, a plugin's lazily registered ones resolved."""
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        resolve = getattr(cmd, "resolve", None)
        cmd = resolve() if callable(resolve) else cmd
        path = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, ctx, path)
        else:
            yield path, cmd

#: a field holding money, by its name ...
MONEY = re.compile(r"amount|balance|revenue|spend|monetary|clv|cost|budget|price|limit|exposure|overdue|outstanding|"
                   r"invoiced|paid|owed|total|value|forecast|weighted|quota|margin|profit|pipeline|debt|receivable|"
                   r"turnover|income|expected|open|writ|credited|current|bucket|\d+_\d+|over_\d+|sales|won|lost|gross")
#: ... unless the name says it is a score, a rate, a count or a time
NOT_MONEY = re.compile(r"score|rate|share|ratio|prob|pct|percent|days|count|weight|index|trend|factor|_id$|^id$|number|purchases|"
                       r"level|segment|loyalty|nps|csat|satisfaction|months|years|rank|alpha|beta|gamma|seconds|"
                       r"_at$|date|^n_|_n$|deals|leads|customers|opportunities|invoices|tickets|visits|entries|"
                       r"^lost_reason|^won_reason|reason|stage|status|name|label|kind|currency|by$|cycle|lift|"
                       r"r_squared|^frequency|recency|elasticity|likelihood|^hours")

#: read commands with ``--json`` not run here, and why
NOT_RUN: dict[str, str] = {
    "credit scorecard evaluate": "needs a fitted scorecard model file and a labelled data file; "
                                 "plugins/credit's scorecard tests cover its output",
    "credit scorecard monitor": "needs a fitted scorecard model file; plugins/credit's scorecard tests cover it",
    "credit scorecard show": "needs a fitted scorecard model file; plugins/credit's scorecard tests cover it",
}


#: subtrees that hold weights, loyalty points or settings, named after money but not money
NOT_MONEY_BLOCKS = frozenset({"weights", "contributions", "loyalty_contributions", "settings", "loyalty_weights"})
#: `crm config show` lists settings (rates, weights, days), as crm.toml holds them
SETTINGS_COMMANDS = frozenset({"config show"})


def floats_in_money(value: Any, path: str = "", parent: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a number (not an int count) in a field whose name says money. A list
    of pairs keyed by a money name (``"by_month": [[..., 12.5]]``) is checked by its parent's name."""
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k) in NOT_MONEY_BLOCKS:
                continue
            yield from floats_in_money(v, f"{path}.{k}", str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from floats_in_money(v, f"{path}[{i}]", parent)
    elif isinstance(value, float) and MONEY.search(parent.lower()) and not NOT_MONEY.search(parent.lower()):
        yield path, value


def money_strings(value: Any, parent: str = "") -> int:
    """How many decimal strings sit in money fields (so a walk is not vacuous)."""
    if isinstance(value, dict):
        return sum(money_strings(v, str(k)) for k, v in value.items() if str(k) not in NOT_MONEY_BLOCKS)
    if isinstance(value, list):
        return sum(money_strings(v, parent) for v in value)
    is_money = MONEY.search(parent.lower()) and not NOT_MONEY.search(parent.lower())
    return int(bool(is_money) and isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value) is not None)


def test_the_walk_catches_a_float_in_money_and_leaves_rates() -> None:
    doc = {"run": {"total_revenue": 14124286.719999986, "churn_rate": 0.25, "open_balance": "12.50"},
           "rows": [{"amount": 3.1, "win_probability": 0.4, "count": 3}], "weights": {"spend": 0.2}}
    assert [p for p, _ in floats_in_money(doc)] == [".run.total_revenue", ".rows[0].amount"]
    assert money_strings(doc) == 1


def _seed(cli: Callable[..., Any], tmp_path: Any) -> dict[str, str]:
    """A small CRM touching every plugin: customers, a ledger, value run, leads and deals, a credit
    profile and hold, a campaign with a cost, a ticket with a return visit, a contact's consent."""
    def ok(*args: str) -> Any:
        res = cli(*args)
        assert res.exit_code == 0, (args, res.output)
        return res

    ok("demo", "generate", "--customers", "60", "--transactions", "900", "--seed", "7")
    ok("value", "run", "--as-of", "2025-01-01")
    ok("sales", "demo", "--deals", "30", "--leads", "12", "--seed", "7")
    ok("credit", "profile", "set", "C0000001", "--limit", "10000.50", "--terms", "30", "--reason", "first order")
    ok("credit", "dunning", "run")
    ok("customer", "add", "Quarry Stoneworks AG", "--ref", "ORG-1", "--kind", "organization")
    ok("contact", "add", "ORG-1", "Ada Buyer", "--ref", "P-ADA")
    ok("marketing", "segment", "create", "everyone", "--rule", 'spend() > 0')
    ok("marketing", "campaign", "create", "Spring", "--channel", "email", "--segment", "everyone", "--budget", "1500.10",
       "--subject", "Hello", "--body", "Hi {{ customer.name }}")
    ok("marketing", "campaign", "cost", "Spring", "650.33", "--ref", "AG-1")
    ok("marketing", "campaign", "launch", "Spring")
    ticket = json.loads(ok("service", "ticket", "open", "C0000003", "--subject", "Door cracked", "--kind", "complaint",
                           "--json").stdout)
    tid = str(ticket.get("id", ticket.get("ticket_id")))
    ok("service", "ticket", "resolve", tid)
    lead = json.loads(ok("sales", "lead", "list", "--json").stdout)
    opp = json.loads(ok("sales", "opp", "list", "--json").stdout)
    accounts = json.loads(ok("account", "list", "--json").stdout)
    return {"ticket": tid, "lead": str(_first_id(lead)), "opp": str(_first_id(opp)),
            "account": str(_first_id(accounts))}


def _first_id(doc: Any) -> Any:
    rows = doc if isinstance(doc, list) else next(v for v in doc.values() if isinstance(v, list))
    return rows[0]["id"]


def _args(ids: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """The arguments of the read commands that need some."""
    return {
        "account statement": (ids["account"],),
        "contact list": ("ORG-1",),
        "customer show": ("C0000001",),
        "credit check": ("C0000001", "2500.25"),
        "credit profile show": ("C0000001",),
        "marketing campaign audience": ("Spring",),
        "marketing campaign report": ("Spring",),
        "marketing campaign show": ("Spring",),
        "marketing consent show": ("C0000001",),
        "marketing contact-consent show": ("P-ADA",),
        "marketing cross-sell": ("--bought", "kitchens", "--not-bought", "tools"),
        "marketing segment preview": ("everyone",),
        "sales lead show": (ids["lead"],),
        "sales opp show": (ids["opp"],),
        "service ticket show": (ids["ticket"],),
        "value show": ("C0000001",),
        "value fit": ("--calibration-end", "2024-06-30"),
        "value validate": ("--calibration-end", "2024-06-30", "--holdout-end", "2024-12-31"),
    }


def _json_reads(crm_url: str) -> dict[str, click.Command]:
    root = build_cli(PLUGINS)
    ctx = click.Context(root, obj=None)
    ctx.params = {"database": crm_url, "user": "tester"}
    found = {path: cmd for path, cmd in _leaves(root, ctx)  # type: ignore[arg-type]
             if path in READS and any("--json" in p.opts for p in cmd.params if isinstance(p, click.Option))}
    ctx.close()
    return found


def test_every_json_read_command_prints_money_as_decimal_strings(make_crm: Callable[..., CRM], crm_url: str,
                                                                 cli: Callable[..., Any], tmp_path: Any) -> None:
    make_crm(plugins=list(PLUGINS))
    ids = _seed(cli, tmp_path)
    reads = _json_reads(crm_url)
    assert len(reads) > 50, sorted(reads)  # the plugins' commands are there
    args = _args(ids)
    stale = sorted((set(args) | set(NOT_RUN)) - set(reads))
    assert not stale, f"listed here but not a read command with --json any more: {stale}"
    floats: list[str] = []
    failed: list[str] = []
    checked = 0
    for path, cmd in sorted(reads.items()):
        if path in NOT_RUN:
            continue
        required = [p.name for p in cmd.params if p.required]
        assert not required or path in args, f"`crm {path}` needs {required}: give them in _args() or list it in NOT_RUN"
        res = cli(*path.split(), *args.get(path, ()), "--json")
        if res.exit_code != 0:
            failed.append(f"crm {path}: {res.output.strip()}")
            continue
        doc = json.loads(res.stdout)
        if path not in SETTINGS_COMMANDS:
            floats += [f"crm {path} --json: {p} = {v!r}" for p, v in floats_in_money(doc)]
        checked += money_strings(doc)
    assert not failed, "\n".join(failed)
    assert not floats, "money printed as a number, not a decimal string:\n" + "\n".join(floats)
    assert checked > 100, checked  # the walk saw real amounts, not empty outputs
