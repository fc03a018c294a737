"""Money in every JSON output of value_analysis (CLI --json, API routes) is a decimal string: walk each
output and fail on a number in a money field (today's bug: "revenue": 14124286.719999986)."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from crm_value_analysis import shapes
from crm_value_analysis.testing import bulk_load, d
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate

MONEY = re.compile(r"(revenue|monetary|clv|spend|cost|amount)")
NOT_MONEY = re.compile(r"(_share|_trend|_kinds|^loyalty_|_spend$(?<!mean_spend)(?<!own_average_spend)|^by$)")
TOTALS = {"total", "mean"}  # money inside the deterministic / probabilistic CLV blocks


def money_fields(value: Any, path: str = "", parent: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a money field in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            key = str(k)
            if key in ("contributions", "loyalty_contributions", "weights", "loyalty_weights", "timings"):
                continue  # loyalty points, weights, seconds
            is_money = (MONEY.search(key) and not NOT_MONEY.search(key)) or (
                key in TOTALS and parent in ("deterministic", "probabilistic"))
            if is_money and not isinstance(v, (dict, list)):
                yield f"{path}.{key}", v
            yield from money_fields(v, f"{path}.{key}", key)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from money_fields(v, f"{path}[{i}]", parent)


def check(doc: Any, where: str) -> int:
    found = 0
    for path, v in money_fields(doc):
        assert v is None or isinstance(v, str), f"{where}{path} = {v!r} is not a decimal string"
        if isinstance(v, str):
            Decimal(v)  # a decimal, not any text
            assert re.fullmatch(r"-?\d+\.\d{2}", v), f"{where}{path} = {v!r}"
            found += 1
    return found


def test_the_walker_catches_a_float() -> None:
    with pytest.raises(AssertionError, match="revenue"):
        check({"run": {"total_revenue": 14124286.719999986}}, "x")
    with pytest.raises(AssertionError, match="total"):
        check({"probabilistic": {"total": 1.5}}, "x")
    assert check({"loyalty_spend": 0.3, "spend_trend": -0.2, "monetary": "12.30"}, "x") == 1


@pytest.fixture
def analysed(vcrm: CRM) -> dict[str, Any]:
    log = shapes.retail(n=300)
    amounts = log.amounts * 1000.0 + 0.37  # large amounts with cents: floats would show their error
    ids = bulk_load(vcrm, log.customer_idx, log.days, amounts, log.n)
    return {"ids": ids, "as_of": d(log.as_of_day), "cal": d(log.as_of_day - 120), "hold": d(log.as_of_day)}


def test_every_cli_json_output_has_money_as_decimal_strings(vcrm: CRM, vcli: Callable[..., Any],
                                                            analysed: dict[str, Any]) -> None:
    cid = str(int(analysed["ids"][0]))
    commands = [
        ("run", "--as-of", analysed["as_of"].isoformat()),
        ("runs",), ("rfm",), ("pyramid",), ("pareto",), ("dependency",), ("churn",), ("loyalty",), ("clv",),
        ("clv", "--by", "deterministic"), ("show", f"#{cid}"),
        ("pyramid", "--by", "profit"), ("pareto", "--by", "profit"), ("dependency", "--by", "profit"),
        ("unprofitable",),
        ("fit", "--calibration-end", analysed["cal"].isoformat(), "--model", "bg_nbd"),
        ("validate", "--calibration-end", analysed["cal"].isoformat(), "--holdout-end", analysed["hold"].isoformat(),
         "--model", "bg_nbd"),
    ]
    counted = {}
    for args in commands:
        res = vcli("value", *args, "--json")
        assert res.exit_code == 0, (args, res.output)
        key = args[0] + (" " + args[2] if len(args) > 2 and args[1] == "--by" else "")
        counted[key] = check(json.loads(res.stdout), key)
    # every report that carries amounts was checked on real values, not on an empty output
    for name in ("run", "runs", "rfm", "pyramid", "pareto", "dependency", "churn", "clv", "clv deterministic", "show", "fit",
                 "pyramid profit", "pareto profit", "dependency profit", "unprofitable"):
        assert counted[name] > 0, (name, counted)


#: Routes that report no amounts of money (reasons, counts, rates).
WITHOUT_AMOUNTS = {"/value/churn-reasons", "/value/retention", "/value/lifecycle-patterns"}


def test_every_api_route_has_money_as_decimal_strings(vcrm: CRM, vcli: Callable[..., Any],
                                                      analysed: dict[str, Any]) -> None:
    assert vcli("value", "run", "--as-of", analysed["as_of"].isoformat()).exit_code == 0
    client = TestClient(create_app(vcrm), raise_server_exceptions=False)
    with vcrm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with vcrm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    spec = client.get("/openapi.json", headers=h).json()
    routes = [p for p, ops in spec["paths"].items() if "/value/" in p and "get" in ops]
    assert {"/value/rfm", "/value/pyramid", "/value/clv", "/value/customers/{customer_id}"} <= {
        p[p.index("/value/"):] for p in routes}
    dates = {"/value/fit": {"calibration_end": analysed["cal"]},  # the routes with required dates, as the CLI's
             "/value/validate": {"calibration_end": analysed["cal"], "holdout_end": analysed["hold"]}}
    for path in routes:
        url = path.replace("{customer_id}", str(int(analysed["ids"][0])))
        params = {k: v.isoformat() for k, v in dates.get(path[path.index("/value/"):], {}).items()}
        res = client.get(url, headers=h, params=params)
        assert res.status_code == 200, (url, res.text)
        found = check(res.json(), url)  # every amount it has is a decimal string
        if path[path.index("/value/"):] not in WITHOUT_AMOUNTS:
            assert found > 0, url
