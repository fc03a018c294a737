"""Segment rules: a small expression language (or the same rule as JSON), compiled to ONE SQL query.

    country = "DE" and tags has "trade" and spend(days=365) > 1000
    (region in ("Bavaria", "Hesse") or attr.budget >= 5000) and not lifecycle_stage = "churned"
    interactions(kind="complaint", days=90) = 0 and recency <= 180
    value_tier in ("vip", "key") and churn_risk = true          # with value_analysis enabled

The text is parsed with lark (a maintained parser generator: a grammar is easier to read and to
keep correct than a hand-written tokenizer) into a JSON tree::

    {"and": [{"field": "country", "op": "=", "value": "DE"},
             {"field": "spend", "args": {"days": 365}, "op": ">", "value": 1000}]}

which is what is stored and what ``--json`` rules are written in. The tree is checked against the
known fields (an unknown field is an error that names it) and compiled with SQLAlchemy Core:
customer columns become WHERE terms, each behavioural function one aggregated subquery LEFT
JOINed on the customer id (set-based, never evaluated customer by customer in Python).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedInput, VisitError
from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from crmcore.db.types import utcnow
from crmcore.errors import InvalidInput
from crmcore.models import Account, Customer, Interaction, Transaction, User
from crmcore.sdk import text_problem

GRAMMAR = (Path(__file__).parent / "segment.lark").read_text(encoding="utf-8")
_parser = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)

MAX_RULE_LENGTH = 10_000
MAX_DEPTH = 50
#: Numbers in a rule lie within +-MAX_NUMBER: wider than any count, sum (amounts stop below 10^13)
#: or score, and narrow enough for every engine's integer and float comparisons (a 24-digit
#: integer overflows SQLite's INTEGER, 1e308 a NUMERIC cast on either engine).
MAX_NUMBER = 10**15
#: Longest text value (and most values of an ``in`` list) in a rule.
MAX_VALUE_LENGTH = 1000
MAX_IN_VALUES = 1000
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "has")
ORDERED = ("<", "<=", ">", ">=")

# customer columns a rule may name: field -> (column, type)
def _enum_values(col: Any) -> tuple[str, ...] | None:
    enums = getattr(col.type, "enums", None)
    return tuple(enums) if enums else None


CUSTOMER_FIELDS: dict[str, tuple[Any, str]] = {
    "country": (Customer.country, "str"),
    "region": (Customer.region, "str"),
    "kind": (Customer.kind, "str"),
    "industry": (Customer.industry, "str"),
    "lifecycle_stage": (Customer.lifecycle_stage, "str"),
    "name": (Customer.name, "str"),
    "email": (Customer.email, "str"),
    "external_ref": (Customer.external_ref, "str"),
}
# behavioural functions: name -> (allowed arguments, type)
FUNCTIONS: dict[str, tuple[frozenset[str], str]] = {
    "purchases": (frozenset({"days", "category", "currency"}), "num"),
    "spend": (frozenset({"days", "category", "currency"}), "num"),
    "interactions": (frozenset({"days", "kind", "channel", "direction"}), "num"),
}
# recency: days since the last invoice (NULL when none, so any comparison is false)
SPECIAL = {"recency": "num", "owner": "str", "tags": "tags"}
# fields of the latest value_analysis run (only when that plugin is enabled): the columns of the
# selectable its ``value_segment_columns`` hook publishes, never its tables
VALUE_FIELDS: dict[str, str] = {
    "rfm_segment": "str",
    "value_tier": "str",
    "churn_risk": "bool",
    "p_alive": "num",
    "clv": "num",
    "loyalty": "num",
}
VALUE_HOOK = "value_segment_columns"


# -- parsing -------------------------------------------------------------------------------

class _ToJSON(Transformer[Token, Any]):
    def or_(self, items: list[Any]) -> Any:
        return {"or": items}

    def and_(self, items: list[Any]) -> Any:
        return {"and": items}

    def not_(self, items: list[Any]) -> Any:
        return {"not": items[0]}

    def compare(self, items: list[Any]) -> Any:
        f, op, v = items
        return {**f, "op": str(op), "value": v}

    def has(self, items: list[Any]) -> Any:
        return {**items[0], "op": "has", "value": items[1]}

    def in_(self, items: list[Any]) -> Any:
        return {**items[0], "op": "in", "value": items[1:]}

    def field(self, items: list[Any]) -> Any:
        return {"field": ".".join(str(t) for t in items)}

    def call(self, items: list[Any]) -> Any:
        return {"field": str(items[0]), "args": dict(items[1:])}

    def kwarg(self, items: list[Any]) -> Any:
        return (str(items[0]), items[1])

    def string(self, items: list[Any]) -> Any:
        return json.loads(items[0])

    def number(self, items: list[Any]) -> Any:
        text = str(items[0])
        digits = text.lstrip("+-").lstrip("0")
        if text.lstrip("+-").isdigit():
            if len(digits) > 16:  # int() of a 5,000-digit text is refused by Python itself
                raise InvalidInput(f"invalid rule: number {_short(text)} is out of range (numbers in a rule lie "
                                   f"between -{MAX_NUMBER:,} and {MAX_NUMBER:,})", [("rule", "number out of range")])
            return int(text)
        return float(text)

    def true(self, _: list[Any]) -> Any:
        return True

    def false(self, _: list[Any]) -> Any:
        return False


def parse(text: str) -> dict[str, Any]:
    """Parse a rule (expression text, or JSON when it starts with ``{``) into its JSON tree."""
    text = text.strip()
    if not text:
        raise InvalidInput("invalid rule: it is empty", [("rule", "empty")])
    if len(text) > MAX_RULE_LENGTH:
        raise InvalidInput(f"invalid rule: longer than {MAX_RULE_LENGTH} characters", [("rule", "too long")])
    if text.startswith("{"):
        try:
            tree = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise InvalidInput(f"invalid rule: not valid JSON ({str(e)[:120]})", [("rule", "bad JSON")]) from None
        _check_shape(tree, 0)
        return tree
    try:
        tree = _ToJSON().transform(_parser.parse(text))
    except VisitError as e:
        if isinstance(e.orig_exc, InvalidInput):
            raise e.orig_exc from None
        raise InvalidInput(f"invalid rule: {type(e.orig_exc).__name__}", [("rule", "syntax")]) from None
    except UnexpectedInput as e:
        where = f"column {e.column}" if getattr(e, "column", None) else "the end"
        near = text[max(0, e.pos_in_stream or 0):][:20] if getattr(e, "pos_in_stream", None) is not None else ""
        raise InvalidInput(f"invalid rule: syntax error at {where}" + (f" near {near!r}" if near else ""),
                           [("rule", "syntax")]) from None
    except (LarkError, RecursionError, ValueError) as e:
        raise InvalidInput(f"invalid rule: {str(e).splitlines()[0][:200]}", [("rule", "syntax")]) from None
    _check_shape(tree, 0)
    return tree


def _short(text: str) -> str:
    return text if len(text) <= 30 else f"{text[:12]}…({len(text)} characters)"


def _check_shape(node: Any, depth: int) -> None:
    """A JSON rule must be a tree of and/or/not over comparisons; refuse anything else early."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"invalid rule: nested deeper than {MAX_DEPTH} levels", [("rule", "too deep")])
    if not isinstance(node, dict):
        raise InvalidInput(f"invalid rule: expected an object, got {json.dumps(node)[:60]}", [("rule", "shape")])
    if "and" in node or "or" in node:
        key = "and" if "and" in node else "or"
        parts = node[key]
        if set(node) != {key} or not isinstance(parts, list) or not parts:
            raise InvalidInput(f"invalid rule: '{key}' takes a non-empty list and nothing else", [("rule", "shape")])
        for p in parts:
            _check_shape(p, depth + 1)
        return
    if "not" in node:
        if set(node) != {"not"}:
            raise InvalidInput("invalid rule: 'not' takes one rule and nothing else", [("rule", "shape")])
        _check_shape(node["not"], depth + 1)
        return
    name = node.get("field")
    if isinstance(name, str) and (len(name) > 100 or text_problem(name)):  # from JSON: anything
        raise InvalidInput(f"invalid rule: field name {json.dumps(name)[:60]} {text_problem(name) or 'is too long'}",
                           [("rule", "field name")])
    if not isinstance(name, str) or node.get("op") not in OPS or "value" not in node:
        raise InvalidInput(f"invalid rule: a comparison needs field, op (one of {' '.join(OPS)}) and value; "
                           f"got {json.dumps(node)[:80]}", [("rule", "shape")])
    args = node.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise InvalidInput(f"invalid rule: 'args' must be an object of named arguments, got {json.dumps(args)[:60]}",
                           [("rule", "shape")])
    extra = set(node) - {"field", "op", "value", "args"}
    if extra:
        raise InvalidInput(f"invalid rule: unknown keys {sorted(extra)} in a comparison", [("rule", "shape")])


def to_text(node: dict[str, Any]) -> str:
    """The rule written back as an expression (for display)."""
    if "and" in node or "or" in node:
        key = "and" if "and" in node else "or"
        return f" {key} ".join(f"({to_text(p)})" if ("and" in p or "or" in p) else to_text(p) for p in node[key])
    if "not" in node:
        inner = to_text(node["not"])
        return f"not ({inner})"
    name = node["field"]
    if "args" in node:
        name += "(" + ", ".join(f"{k}={json.dumps(v)}" for k, v in node["args"].items()) + ")"
    v = node["value"]
    value = "(" + ", ".join(json.dumps(x) for x in v) + ")" if node["op"] == "in" else json.dumps(v)
    return f"{name} {node['op']} {value}"


# -- compiling -----------------------------------------------------------------------------

@dataclass
class CompileContext:
    """What the compiler needs to know about this CRM."""

    custom_fields: dict[str, str]  # name -> type
    value_columns: Any  # value_analysis's published selectable (see value_columns), None without that plugin
    default_currency: str
    today: dt.datetime = field(default_factory=utcnow)
    _joins: list[tuple[Any, bool]] = field(default_factory=list)
    top: bool = True  # compiling a conjunct of the rule's top-level AND (not under or/not)

    def join(self, subquery: Any, inner: bool = False) -> Any:
        """Join an aggregated subquery on the customer id. ``inner``: customers without a row can
        never match (a top-level conjunct false for a missing row), so an INNER JOIN is exact and
        gives the planner the same shape as hand-written SQL; otherwise a LEFT JOIN."""
        aliased = subquery.subquery(f"agg{len(self._joins)}")
        self._joins.append((aliased, inner))
        return aliased


def _fail(field_name: str, reason: str) -> InvalidInput:
    return InvalidInput(f"invalid rule: field {field_name!r}: {reason}", [(field_name, reason)])


def _values(node: dict[str, Any]) -> list[Any]:
    v = node["value"]
    if node["op"] == "in":
        if not isinstance(v, list) or not v:
            raise _fail(node["field"], "'in' needs a non-empty list of values")
        if len(v) > MAX_IN_VALUES:
            raise _fail(node["field"], f"'in' takes at most {MAX_IN_VALUES} values")
        return v
    return [v]


def _check_value(name: str, kind: str, value: Any) -> Any:
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(name, f"compares with a number, got {json.dumps(value)[:40]}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(name, "the number must be finite")
        if not -MAX_NUMBER <= value <= MAX_NUMBER:
            raise _fail(name, f"{_short(str(value))} is out of range (numbers in a rule lie between "
                              f"-{MAX_NUMBER:,} and {MAX_NUMBER:,})")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(name, f"compares with true or false, got {json.dumps(value)[:40]}")
        return value
    if not isinstance(value, str):
        raise _fail(name, f"compares with a text, got {json.dumps(value)[:40]}")
    return _text(name, value)


def _text(name: str, value: str) -> str:
    """A text value the database can store and compare (no NUL, no lone surrogate, bounded)."""
    problem = text_problem(value, MAX_VALUE_LENGTH)
    if problem:
        raise _fail(name, f"the text {json.dumps(value)[:40]} {problem}")
    return value


def _compare(col: Any, node: dict[str, Any], kind: str) -> ColumnElement[bool]:
    name, op = node["field"], node["op"]
    if op == "has":
        raise _fail(name, "'has' works on tags only")
    if op in ORDERED and kind in ("bool",):
        raise _fail(name, f"{op} does not apply to true/false")
    values = [_check_value(name, kind, v) for v in _values(node)]
    if op == "in":
        return col.in_(values)
    v = values[0]
    # only the operator asked is built: `col < true` is refused by SQLAlchemy on a typed Boolean column
    return {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}[op](col, v)


def _days_arg(name: str, args: dict[str, Any], default: int | None) -> int | None:
    days = args.get("days", default)
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 36_600:
        raise _fail(name, f"days must be a whole number from 1 to 36600, got {json.dumps(days)[:40]}")
    return days


def _str_arg(name: str, args: dict[str, Any], key: str) -> str | None:
    v = args.get(key)
    if v is not None and not isinstance(v, str):
        raise _fail(name, f"{key} must be a text")
    return None if v is None else _text(name, v)


def _zero_matches(node: dict[str, Any]) -> bool:
    """Does a count or sum of 0 (a customer with no rows) satisfy the comparison?"""
    op, v = node["op"], node["value"]
    values = v if isinstance(v, list) else [v]
    if not values or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        return True  # a bad value: _compare reports it
    if op == "in":
        return 0 in values
    x = values[0]
    return {"=": x == 0, "!=": x != 0, "<": x > 0, "<=": x >= 0, ">": x < 0, ">=": x <= 0}.get(op, True)


def _function(node: dict[str, Any], ctx: CompileContext) -> ColumnElement[bool]:
    name, args = node["field"], node.get("args") or {}
    allowed, kind = FUNCTIONS[name]
    unknown = set(args) - allowed
    if unknown:
        raise _fail(name, f"unknown argument(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")
    days = _days_arg(name, args, None)
    since = ctx.today - dt.timedelta(days=days) if days else None
    if name in ("purchases", "spend"):
        currency = _str_arg(name, args, "currency") or ctx.default_currency
        category = _str_arg(name, args, "category")
        conds = [Transaction.kind == "invoice", Transaction.currency == currency.upper()]
        if since is not None:
            conds.append(Transaction.occurred_at >= since)
        if category is not None:
            conds.append(Transaction.category == category)
        measure = func.count() if name == "purchases" else func.sum(Transaction.amount)
        agg = ctx.join(select(Account.customer_id.label("customer_id"), measure.label("v")).select_from(Transaction)
                       .join(Account, Account.id == Transaction.account_id).where(*conds).group_by(Account.customer_id),
                       inner=ctx.top and not _zero_matches(node))
    else:
        conds = []
        if since is not None:
            conds.append(Interaction.occurred_at >= since)
        for key, col in (("kind", Interaction.kind), ("channel", Interaction.channel), ("direction", Interaction.direction)):
            v = _str_arg(name, args, key)
            if v is not None:
                conds.append(col == v)
        agg = ctx.join(select(Interaction.customer_id.label("customer_id"), func.count().label("v"))
                       .where(*conds).group_by(Interaction.customer_id), inner=ctx.top and not _zero_matches(node))
    # a plain number, not the Money column type: its bind check refuses a rule value like 0.03125
    return _compare(type_coerce(func.coalesce(agg.c.v, 0), Float()), node, kind)


def value_columns(uow: Any) -> Any:
    """What value_analysis publishes for segment rules (its ``value_segment_columns`` hook): a
    selectable of ``customer_id`` and the :data:`VALUE_FIELDS`; None when that plugin is not loaded."""
    if not uow.hooks.has_spec(VALUE_HOOK):
        return None
    answer = uow.hooks.call(VALUE_HOOK, uow=uow)
    return None if answer is None or isinstance(answer, list) else answer  # []: nobody implements it


def _value_field(node: dict[str, Any], ctx: CompileContext) -> ColumnElement[bool]:
    name, source = node["field"], ctx.value_columns
    if source is None:
        raise _fail(name, "needs the value_analysis plugin (crm plugins enable value_analysis, then crm value run)")
    if isinstance(source, Select):  # the contract: flat, so the plan is the one of a hand-written join
        cols = source.selected_columns
        if name not in cols or "customer_id" not in cols:
            raise _fail(name, "value_analysis does not publish it (upgrade the value_analysis plugin)")
        query = source.with_only_columns(cols.customer_id.label("customer_id"), cols[name].label("v"))
    else:  # a table or a subquery
        if name not in source.c or "customer_id" not in source.c:
            raise _fail(name, "value_analysis does not publish it (upgrade the value_analysis plugin)")
        query = select(source.c.customer_id.label("customer_id"), source.c[name].label("v"))
    agg = ctx.join(query, inner=ctx.top)  # no row: NULL, never a match
    return _compare(agg.c.v, node, VALUE_FIELDS[name])


def _tags(node: dict[str, Any], dialect: str) -> ColumnElement[bool]:
    if node["op"] not in ("has", "in"):
        raise _fail("tags", "use 'tags has \"x\"' or 'tags in (\"x\", \"y\")' (has any of)")
    values = [_check_value("tags", "str", v) for v in _values(node)]
    if dialect == "postgresql":
        j = cast(Customer.tags, JSONB)
        return or_(*[j.contains([v]) for v in values])
    each = func.json_each(Customer.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(values)))


def _attr(node: dict[str, Any], ctx: CompileContext) -> ColumnElement[bool]:
    name = node["field"]
    key = name.split(".", 1)[1]
    ftype = ctx.custom_fields.get(key)
    if ftype is None:
        known = ", ".join(sorted(ctx.custom_fields)) or "none are defined"
        raise _fail(name, f"unknown custom field (known: {known})")
    element = Customer.attributes[key]
    if ftype in ("int", "decimal"):
        return _compare(element.as_float(), node, "num")
    if ftype == "bool":
        return _compare(element.as_boolean(), node, "bool")
    return _compare(element.as_string(), node, "str")


def _term(node: dict[str, Any], ctx: CompileContext, dialect: str) -> ColumnElement[bool]:
    if "and" in node:
        return and_(*[_term(p, ctx, dialect) for p in node["and"]])
    if "or" in node or "not" in node:
        top, ctx.top = ctx.top, False  # below or/not a missing aggregate row may still match
        try:
            if "or" in node:
                return or_(*[_term(p, ctx, dialect) for p in node["or"]])
            inner = _term(node["not"], ctx, dialect)
        finally:
            ctx.top = top
        return not_(func.coalesce(inner, false()))  # NULL comparisons count as false, so NOT is their complement
    name = node["field"]
    if "args" in node and name not in FUNCTIONS:
        raise _fail(name, "is not a function (functions: " + ", ".join(sorted(FUNCTIONS)) + ")")
    if name in FUNCTIONS:
        return _function(node, ctx)
    if name in CUSTOMER_FIELDS:
        col, kind = CUSTOMER_FIELDS[name]
        allowed = _enum_values(col)
        if allowed is not None:  # kind, lifecycle_stage: a value the column cannot hold is an error, not a crash
            bad = [v for v in _values(node) if v not in allowed]
            if bad:
                raise _fail(name, f"{json.dumps(bad[0])[:40]} is not one of {', '.join(allowed)}")
        return _compare(col, node, kind)
    if name.startswith("attr."):
        return _attr(node, ctx)
    if name == "tags":
        return _tags(node, dialect)
    if name == "owner":
        owner = select(User.id).where(User.username.in_([_check_value("owner", "str", v) for v in _values(node)]))
        if node["op"] not in ("=", "in", "!="):
            raise _fail("owner", "compare with =, != or in")
        return Customer.owner_id.not_in(owner) if node["op"] == "!=" else Customer.owner_id.in_(owner)
    if name == "recency":
        agg = ctx.join(select(Account.customer_id.label("customer_id"), func.max(Transaction.occurred_at).label("v"))
                       .select_from(Transaction).join(Account, Account.id == Transaction.account_id)
                       .where(Transaction.kind == "invoice").group_by(Account.customer_id), inner=ctx.top)
        if node["op"] not in ORDERED:
            raise _fail("recency", "compare with <, <=, > or >= and a number of days")
        days = _check_value("recency", "num", node["value"])
        # recency <= N  <=>  last purchase on or after today - N days: a timestamp comparison,
        # so no engine-specific date arithmetic is needed
        cutoff = ctx.today - dt.timedelta(days=min(max(float(days), -36_600.0), 36_600.0))  # +-100 years: no date overflow
        last = agg.c.v
        return {"<": last > cutoff, "<=": last >= cutoff, ">": last < cutoff, ">=": last <= cutoff}[node["op"]]
    if name in VALUE_FIELDS:
        return _value_field(node, ctx)
    known = sorted([*CUSTOMER_FIELDS, *FUNCTIONS, *SPECIAL, "attr.<custom field>", *VALUE_FIELDS])
    raise _fail(name, "unknown field (known: " + ", ".join(known) + ")")


def compile_rule(tree: dict[str, Any], ctx: CompileContext, dialect: str) -> Select[Any]:
    """One SELECT of the ids of the (non-archived) customers the rule matches."""
    cond = _term(tree, ctx, dialect)
    q = select(Customer.id).where(Customer.archived == false())
    for agg, inner in ctx._joins:
        q = q.join(agg, agg.c.customer_id == Customer.id) if inner else q.outerjoin(agg, agg.c.customer_id == Customer.id)
    return q.where(cond)  # NULL (a comparison with a missing value) does not match, on both engines


__all__ = ["CUSTOMER_FIELDS", "FUNCTIONS", "VALUE_FIELDS", "VALUE_HOOK", "CompileContext", "compile_rule", "parse", "to_text",
           "value_columns"]

