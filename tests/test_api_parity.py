"""Every write by every face: each ``crm`` command that writes has an HTTP route over the same
service call, and each writing route has a command, unless an entry below says why not.

The command tree is walked with the core and all five plugins enabled; the API's operations come
from the app's OpenAPI document. A new command (or route) fails this test until it is classified:
a read, a write with its route, or an exception with a reason. A command classified as a read must
not open a writing unit of work (its source is checked), so a write cannot hide among the reads.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import click
import crm_credit.plugin as CREDIT
import crm_marketing.plugin as MARKETING
import crm_sales_automation.plugin as SALES
import crm_service.plugin as SERVICE
import crm_value_analysis.plugin as VALUE
import pytest

from crmcore import CRM
from crmcore.api import create_app
from crmcore.cli import build_cli

PLUGINS = (CREDIT, MARKETING, SALES, SERVICE, VALUE)

#: commands that change nothing (reports, listings, previews, the server itself)
READS = frozenset({
    "account list", "account statement", "audit", "config show", "contact list", "customer duplicates",
    "customer list", "customer show", "db check", "db current", "export", "interaction list", "plugins list",
    "serve", "user list", "user permissions", "user token list", "webhooks list",
    "credit aging", "credit check", "credit dso", "credit dunning list", "credit profile show",
    "credit review due", "credit scorecard evaluate", "credit scorecard monitor", "credit scorecard show", "credit warnings",
    "marketing campaign list", "marketing campaign report", "marketing campaign show", "marketing consent show",
    "marketing contact-consent show", "marketing campaign audience",
    "marketing cross-sell", "marketing segment list", "marketing segment preview",
    "sales activity due", "sales forecast", "sales pipeline list", "sales pipeline show", "sales lead list", "sales lead show", "sales opp list", "sales opp show",
    "sales quota list", "sales report follow-up", "sales report funnel", "sales report objections", "sales report reasons", "sales report sources",
    "sales report performance", "sales report pipeline", "sales report probabilities", "sales report stale",
    "service nps", "service report", "service ticket list", "service ticket show", "service visit due",
    "value churn", "value clv", "value dependency", "value fit", "value loyalty", "value pareto", "value pyramid",
    "value patterns", "value reasons", "value retention", "value rfm", "value runs", "value show", "value unprofitable", "value validate",
})

#: the core's reads and their routes (the same service call; checked against the CLI's --json,
#: for an admin and an "own" user, in tests/test_platform_gaps_reads.py and the customer tests)
CORE_READ_ROUTES: dict[str, tuple[str, str]] = {
    "account list": ("GET", "/accounts"),  # with --customer: GET /customers/{customer_id}/accounts
    "account statement": ("GET", "/accounts/{account_id}/statement"),
    "audit": ("GET", "/audit"),
    "contact list": ("GET", "/customers/{customer_id}/contacts"),
    "customer duplicates": ("GET", "/customers/duplicates"),
    "customer list": ("GET", "/customers"),
    "customer show": ("GET", "/customers/{customer_id}"),
    "interaction list": ("GET", "/interactions"),  # with --customer: GET /customers/{customer_id}/interactions
    "user list": ("GET", "/users"),
    "webhooks list": ("GET", "/webhooks"),
}

#: the plugins' reads and their routes: the same service call, the same ``--json`` document, the same
#: permissions and visibility (checked for an admin and an "own" user in
#: tests/test_platform_visibility_plugin_reads.py and each plugin's API tests)
PLUGIN_READ_ROUTES: dict[str, tuple[str, str]] = {
    "credit aging": ("GET", "/credit/aging"),
    "credit check": ("POST", "/credit/customers/{customer_id}/check"),  # a read with a body (API_ONLY)
    "credit dso": ("GET", "/credit/dso"),
    "credit dunning list": ("GET", "/credit/dunning"),
    "credit profile show": ("GET", "/credit/customers/{customer_id}"),
    "credit review due": ("GET", "/credit/reviews/due"),
    "credit warnings": ("GET", "/credit/warnings"),
    "marketing campaign audience": ("GET", "/marketing/campaigns/{name}/audience"),
    "marketing campaign list": ("GET", "/marketing/campaigns"),
    "marketing campaign report": ("GET", "/marketing/campaigns/{name}/report"),
    "marketing campaign show": ("GET", "/marketing/campaigns/{name}"),
    "marketing consent show": ("GET", "/marketing/customers/{customer}/consent"),
    "marketing contact-consent show": ("GET", "/marketing/contacts/{contact}/consent"),
    "marketing cross-sell": ("GET", "/marketing/cross-sell"),
    "marketing segment list": ("GET", "/marketing/segments"),
    "marketing segment preview": ("GET", "/marketing/segments/{name}/preview"),  # --rule: POST /marketing/segments/preview
    "sales activity due": ("GET", "/sales/activities/due"),
    "sales forecast": ("GET", "/sales/forecast"),
    "sales lead list": ("GET", "/sales/leads"),
    "sales lead show": ("GET", "/sales/leads/{lead_id}"),
    "sales opp list": ("GET", "/sales/opportunities"),
    "sales opp show": ("GET", "/sales/opportunities/{opp_id}"),
    "sales pipeline list": ("GET", "/sales/pipelines"),
    "sales pipeline show": ("GET", "/sales/pipelines/{name}"),
    "sales quota list": ("GET", "/sales/quotas"),
    "sales report follow-up": ("GET", "/sales/reports/follow-up"),
    "sales report funnel": ("GET", "/sales/funnel"),
    "sales report objections": ("GET", "/sales/reports/objections"),
    "sales report performance": ("GET", "/sales/reports/performance"),
    "sales report pipeline": ("GET", "/sales/reports/pipeline"),
    "sales report probabilities": ("GET", "/sales/reports/probabilities"),
    "sales report reasons": ("GET", "/sales/reports/reasons"),
    "sales report sources": ("GET", "/sales/reports/sources"),
    "sales report stale": ("GET", "/sales/reports/stale"),
    "service nps": ("GET", "/service/nps"),
    "service report": ("GET", "/service/report"),
    "service ticket list": ("GET", "/service/tickets"),
    "service ticket show": ("GET", "/service/tickets/{ticket_id}"),
    "service visit due": ("GET", "/service/visits/due"),
    "value churn": ("GET", "/value/churn"),
    "value clv": ("GET", "/value/clv"),
    "value dependency": ("GET", "/value/ranking/dependency"),
    "value fit": ("GET", "/value/fit"),
    "value loyalty": ("GET", "/value/loyalty"),
    "value pareto": ("GET", "/value/ranking/pareto"),
    "value patterns": ("GET", "/value/lifecycle-patterns"),
    "value pyramid": ("GET", "/value/ranking/pyramid"),  # GET /value/pyramid: the latest run's own ranking
    "value reasons": ("GET", "/value/churn-reasons"),
    "value retention": ("GET", "/value/retention"),
    "value rfm": ("GET", "/value/rfm"),
    "value runs": ("GET", "/value/runs"),
    "value show": ("GET", "/value/customers/{customer_id}"),
    "value unprofitable": ("GET", "/value/unprofitable"),
    "value validate": ("GET", "/value/validate"),
}

_MODEL_FILE = "reads a scorecard model file (and a CSV) on the server's disk, written by `credit scorecard train`; no database read"
#: plugin reads without a route, and why
PLUGIN_READS_WITHOUT_ROUTE: dict[str, str] = {
    "credit scorecard evaluate": _MODEL_FILE,
    "credit scorecard show": _MODEL_FILE,
    "credit scorecard monitor": _MODEL_FILE + " (a cron check: exit 1 past --fail-above)",
}

#: command options a route does not take, and why (``--json`` is every route's only answer)
_FILE_OUT = "writes a PNG on the local disk; over HTTP the client draws from the JSON"
OPTIONS_WITHOUT_QUERY: dict[tuple[str, str], str] = {
    ("value pyramid", "plot"): _FILE_OUT, ("value pareto", "plot"): _FILE_OUT, ("value clv", "plot"): _FILE_OUT,
    ("value validate", "plot"): _FILE_OUT,
    ("marketing segment preview", "rule"): "a rule is a body: POST /marketing/segments/preview (API_ONLY)",
}

#: writing command -> its route (method, path): the same service call, the same rules
WRITES: dict[str, tuple[str, str]] = {
    "account open": ("POST", "/customers/{customer_id}/accounts"),
    "account post": ("POST", "/customers/{customer_id}/transactions"),
    "account status": ("POST", "/accounts/{account_id}/status"),
    "contact add": ("POST", "/customers/{customer_id}/contacts"),
    "contact remove": ("DELETE", "/contacts/{contact_id}"),
    "contact update": ("PATCH", "/contacts/{contact_id}"),
    "customer add": ("POST", "/customers"),
    "customer archive": ("POST", "/customers/{customer_id}/archive"),
    "customer merge": ("POST", "/customers/{customer_id}/merge"),
    "customer update": ("PATCH", "/customers/{customer_id}"),
    "interaction log": ("POST", "/customers/{customer_id}/interactions"),
    "user activate": ("POST", "/users/{username}/activate"),
    "user add": ("POST", "/users"),
    "user deactivate": ("POST", "/users/{username}/deactivate"),
    "user roles": ("PUT", "/users/{username}/roles"),
    "webhooks add": ("POST", "/webhooks"),
    "webhooks remove": ("DELETE", "/webhooks/{subscription_id}"),
    "credit dunning run": ("POST", "/credit/dunning/run"),
    "credit hold": ("POST", "/credit/customers/{customer_id}/hold"),
    "credit profile set": ("PATCH", "/credit/customers/{customer_id}/profile"),
    "credit score": ("POST", "/credit/scores"),
    "credit release": ("POST", "/credit/customers/{customer_id}/release"),
    "credit writeoff": ("POST", "/credit/customers/{customer_id}/writeoffs"),
    "marketing campaign address": ("POST", "/marketing/campaigns/{name}/address"),
    "marketing campaign cost": ("POST", "/marketing/campaigns/{name}/costs"),
    "marketing campaign create": ("POST", "/marketing/campaigns"),
    "marketing campaign launch": ("POST", "/marketing/campaigns/{name}/launch"),
    "marketing campaign status": ("POST", "/marketing/campaigns/{name}/status"),
    "marketing consent set": ("PUT", "/marketing/customers/{customer}/consent"),
    "marketing contact-consent set": ("PUT", "/marketing/contacts/{contact}/consent"),
    "marketing contact-consent unsubscribe": ("POST", "/marketing/contacts/{contact}/unsubscribe"),
    "marketing response derive": ("POST", "/marketing/campaigns/{name}/responses/derive"),
    "marketing response record": ("POST", "/marketing/campaigns/{name}/responses"),
    "marketing segment add": ("POST", "/marketing/segments/{name}/members"),
    "marketing segment create": ("POST", "/marketing/segments"),
    "marketing segment freeze": ("POST", "/marketing/segments/{name}/freeze"),
    "sales activity add": ("POST", "/sales/activities"),
    "sales activity done": ("POST", "/sales/activities/{activity_id}/done"),
    "sales handover": ("POST", "/sales/handover"),
    "sales lead add": ("POST", "/sales/leads"),
    "sales lead assess": ("POST", "/sales/leads/{lead_id}/assess"),
    "sales lead convert": ("POST", "/sales/leads/{lead_id}/convert"),
    "sales lead learn": ("POST", "/sales/leads/learn"),
    "sales lead update": ("PATCH", "/sales/leads/{lead_id}"),
    "sales referral set": ("PUT", "/sales/customers/{customer_id}/referral"),
    "sales opp add": ("POST", "/sales/opportunities"),
    "sales opp invoice": ("POST", "/sales/opportunities/{opp_id}/invoice"),
    "sales opp lose": ("POST", "/sales/opportunities/{opp_id}/lose"),
    "sales opp move": ("POST", "/sales/opportunities/{opp_id}/move"),
    "sales opp objection": ("POST", "/sales/opportunities/{opp_id}/objections"),
    "sales opp reopen": ("POST", "/sales/opportunities/{opp_id}/reopen"),
    "sales opp resolve": ("POST", "/sales/objections/{objection_id}/resolve"),
    "sales opp update": ("PATCH", "/sales/opportunities/{opp_id}"),
    "sales opp win": ("POST", "/sales/opportunities/{opp_id}/win"),
    "sales pipeline add": ("POST", "/sales/pipelines"),
    "sales quota set": ("PUT", "/sales/quotas"),
    "service mail": ("POST", "/service/mail"),
    "service sla check": ("POST", "/service/sla/check"),
    "service survey record": ("POST", "/service/customers/{customer_id}/survey-answers"),
    "service ticket assign": ("POST", "/service/tickets/{ticket_id}/assign"),
    "service ticket close": ("POST", "/service/tickets/{ticket_id}/move"),
    "service ticket complaint": ("POST", "/service/tickets/{ticket_id}/complaint"),
    "service ticket move": ("POST", "/service/tickets/{ticket_id}/move"),
    "service ticket note": ("POST", "/service/tickets/{ticket_id}/notes"),
    "service ticket open": ("POST", "/service/customers/{customer_id}/tickets"),
    "service ticket reopen": ("POST", "/service/tickets/{ticket_id}/move"),
    "service ticket resolve": ("POST", "/service/tickets/{ticket_id}/move"),
    "service visit done": ("POST", "/service/visits/{visit_id}/done"),
    "service survey send-nps": ("POST", "/service/surveys/send-nps"),
    "value lost": ("POST", "/value/customers/{customer_id}/lost"),
    "value run": ("POST", "/value/runs"),
}

_SCHEMA = "changes the database schema or the installed code: an operator's step on the server, never a request"
_BULK = ("a bulk load from a file on the server (streamed in batches with their own units of work and an error "
         "report file); HTTP clients write record by record with Idempotency-Key")
_SECRET = "issues or revokes credentials: only on the server, so a stolen token cannot mint or keep access"
#: writing commands without a route, and why
NO_ROUTE: dict[str, str] = {
    "init": _SCHEMA,
    "db upgrade": _SCHEMA,
    "db revision": "writes a migration file for a developer; no data",
    "plugins enable": _SCHEMA,
    "plugins disable": _SCHEMA,
    "plugins remove": _SCHEMA,
    "plugins new": "writes a plugin skeleton to the local disk; no data",
    "demo generate": "synthetic demo data, not business data",
    "sales demo": "synthetic demo data, not business data",
    "import": _BULK,
    "marketing response import": _BULK,
    "user password": _SECRET,
    "user sessions revoke": _SECRET,
    "user token create": _SECRET,
    "user token revoke": _SECRET,
    "webhooks deliver": "a delivery pass with its own units of work per delivery; `crm serve` runs it in the background",
    "marketing campaign send": ("a resumable batch job through server-side adapters (outbox folder, SMTP) with a unit "
                                "of work per batch; run by the operator's scheduler, not inside a request"),
    "credit scorecard train": "an offline tool: reads a CSV and writes a model file on the local disk; no database",
    "credit scorecard apply": "applies a model file from the server's disk (written by `credit scorecard train`)",
}

#: writing operations (POST/PUT/PATCH/DELETE) without a command, and why
API_ONLY: dict[tuple[str, str], str] = {
    ("POST", "/credit/customers/{customer_id}/check"): "a read with a body (the amount); `crm credit check` is its command",
    ("POST", "/customers/{customer_id}/merge/preview"): "a read with a body: `crm customer merge --dry-run`",
    ("POST", "/marketing/segments/preview"): "a read with a body (the rule): `crm marketing segment preview --rule`",
}


def _leaves(group: click.Group, ctx: click.Context, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        path = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, ctx, path)
        else:
            yield path, cmd


@pytest.fixture
def faces(make_crm: Callable[..., CRM], crm_url: str) -> tuple[dict[str, click.Command], set[tuple[str, str]]]:
    crm = make_crm(plugins=list(PLUGINS))
    root = build_cli(PLUGINS)
    ctx = click.Context(root, obj=None)
    ctx.params = {"database": crm_url, "user": "parity"}
    commands = dict(_leaves(root, ctx))  # type: ignore[arg-type]
    ctx.close()
    spec = create_app(crm).openapi()
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in ("get", "post", "put", "patch", "delete")}
    return commands, ops


def test_every_command_is_classified(faces: tuple[dict[str, click.Command], set[tuple[str, str]]]) -> None:
    commands, _ = faces
    lists = {"READS": set(READS), "WRITES": set(WRITES), "NO_ROUTE": set(NO_ROUTE)}
    twice = {c: [n for n, s in lists.items() if c in s] for c in commands}
    assert not {c: n for c, n in twice.items() if len(n) > 1}, "a command is in more than one list"
    unclassified = sorted(c for c, n in twice.items() if not n)
    assert not unclassified, f"classify these commands (a read, a write with its route, or an exception): {unclassified}"
    stale = sorted(set().union(*lists.values()) - set(commands))
    assert not stale, f"these listed commands no longer exist: {stale}"
    assert all(len(why) > 20 for why in NO_ROUTE.values()), "every exception says why"


def test_every_writing_command_has_its_route(faces: tuple[dict[str, click.Command], set[tuple[str, str]]]) -> None:
    _, ops = faces
    missing = sorted(f"{c} -> {m} {p}" for c, (m, p) in WRITES.items() if (m, p) not in ops)
    assert not missing, f"routes missing for writing commands: {missing}"


def test_the_core_reads_have_their_routes(faces: tuple[dict[str, click.Command], set[tuple[str, str]]]) -> None:
    _, ops = faces
    assert set(CORE_READ_ROUTES) <= READS, "a core read route is listed for a command that is not a read"
    missing = sorted(f"{c} -> {m} {p}" for c, (m, p) in CORE_READ_ROUTES.items() if (m, p) not in ops)
    assert not missing, f"routes missing for the core's reads: {missing}"


def test_every_writing_route_has_its_command(faces: tuple[dict[str, click.Command], set[tuple[str, str]]]) -> None:
    _, ops = faces
    writes = {op for op in ops if op[0] != "GET"}
    orphans = sorted(f"{m} {p}" for m, p in writes - set(WRITES.values()) - set(API_ONLY))
    assert not orphans, f"writing routes without a command (add one, or an API_ONLY entry saying why): {orphans}"
    stale = sorted(f"{m} {p}" for m, p in set(API_ONLY) - ops)
    assert not stale, f"API_ONLY lists operations that no longer exist: {stale}"


def _opens_writing_unit(cmd: click.Command) -> bool:
    """Whether the command's own code calls ``unit_of_work`` without ``read_only=`` (from its
    compiled code, not its source file, which may change while the suite runs)."""
    fn: Any = inspect.unwrap(cmd.callback) if cmd.callback else None
    if fn is None:
        return False
    code = fn.__code__
    kwnames = [c for c in code.co_consts if isinstance(c, tuple) and all(isinstance(x, str) for x in c)]
    return "unit_of_work" in code.co_names and not any("read_only" in k for k in kwnames)


def test_reads_open_no_writing_unit_of_work(faces: tuple[dict[str, click.Command], set[tuple[str, str]]]) -> None:
    """A command that opens a writing unit of work is not a read."""
    commands, _ = faces
    writing = sorted(c for c in READS if _opens_writing_unit(commands[c]))
    assert not writing, f"listed as reads but they open a writing unit of work: {writing}"
    # and the check can see: commands known to write are caught by it, a known read is not
    assert _opens_writing_unit(commands["customer add"]) and _opens_writing_unit(commands["sales lead convert"])
    assert not _opens_writing_unit(commands["customer list"])


PLUGIN_NAMES = ("credit", "marketing", "sales", "service", "value")


def test_every_plugin_read_has_its_route_or_a_reason(faces: tuple[dict[str, click.Command], set[tuple[str, str]]]) -> None:
    _, ops = faces
    plugin_reads = {c for c in READS if c.split()[0] in PLUGIN_NAMES}
    assert set(PLUGIN_READ_ROUTES) <= plugin_reads and set(PLUGIN_READS_WITHOUT_ROUTE) <= plugin_reads
    assert not set(PLUGIN_READ_ROUTES) & set(PLUGIN_READS_WITHOUT_ROUTE)
    unmapped = sorted(plugin_reads - set(PLUGIN_READ_ROUTES) - set(PLUGIN_READS_WITHOUT_ROUTE))
    assert not unmapped, f"plugin reads without a route (add one, or a reason): {unmapped}"
    missing = sorted(f"{c} -> {m} {p}" for c, (m, p) in PLUGIN_READ_ROUTES.items() if (m, p) not in ops)
    assert not missing, f"routes missing for the plugins' reads: {missing}"


def _query_name(option: str) -> str:
    name = option.removeprefix("--").replace("-", "_")
    return {"customer": "customer_id"}.get(name, name)


@pytest.fixture
def route_params(make_crm: Callable[..., CRM]) -> dict[tuple[str, str], set[str]]:
    """Each operation's query and path parameters and the fields of its JSON body."""
    spec = create_app(make_crm(plugins=list(PLUGINS))).openapi()

    def body(op: dict[str, Any]) -> set[str]:
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return set(schema.get("properties", {}))
    return {(m.upper(), p): {q["name"] for q in op.get("parameters", [])} | body(op)
            for p, item in spec["paths"].items() for m, op in item.items() if m in ("get", "post")}


def test_every_option_of_a_plugin_read_is_a_parameter_of_its_route(
        faces: tuple[dict[str, click.Command], set[tuple[str, str]]], route_params: dict[tuple[str, str], set[str]]) -> None:
    """``crm sales opp list --owner X`` has ``GET /sales/opportunities?owner=X``: an option that only a
    command offers is a read the API cannot make."""
    commands, _ = faces
    lacking = []
    for name, op in PLUGIN_READ_ROUTES.items():
        options = {_query_name(o) for p in commands[name].params if isinstance(p, click.Option)
                   for o in p.opts if o.startswith("--")} - {"json"}
        options -= {o for (c, o) in OPTIONS_WITHOUT_QUERY if c == name}
        lacking += [f"{name} --{o.replace('_', '-')} -> {op[0]} {op[1]}" for o in sorted(options - route_params[op])]
    assert not lacking, f"options of a read that its route does not take: {lacking}"
    assert all(len(why) > 20 for why in OPTIONS_WITHOUT_QUERY.values())
