"""Segment value fields read what value_analysis publishes (its ``value_segment_columns`` hook), never its tables."""
from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

import crm_marketing
import crm_marketing.plugin as PLUGIN
import crm_value_analysis.plugin as VALUE
import pytest
from crm_marketing import segments, services
from crm_marketing.testing import Shop
from crm_value_analysis import services as value_services
from crm_value_analysis.schemas import ValueSettings
from crm_value_analysis.testing import bulk_load, d, simulate_purchase_log
from sqlalchemy import literal, select

from crmcore import CRM, InvalidInput, hookimpl
from crmcore.models import Customer

SOURCE = Path(crm_marketing.__file__).parent


def ids(crm: CRM, rule: str) -> set[int]:
    with crm.unit_of_work("test", read_only=True) as uow:
        return set(uow.session.scalars(services.rule_query(uow, segments.parse(rule))))


def test_marketing_source_names_no_value_analysis_table() -> None:
    files = [p for p in SOURCE.rglob("*") if p.suffix in (".py", ".lark", ".sql", ".toml", ".md") and p.is_file()]
    assert any(p.name == "segments.py" for p in files)
    leaks = {str(p.relative_to(SOURCE)): sorted(set(re.findall(r"value_analysis_\w+|crm_value_analysis\.models", p.read_text("utf-8"))))
             for p in files}
    assert {name: found for name, found in leaks.items() if found} == {}


@pytest.fixture
def valued(make_crm: Any) -> tuple[CRM, dict[int, tuple[Any, ...]]]:
    """Both plugins, 300 simulated customers, one run with a fitted purchase model; {customer: its published row}."""
    crm = make_crm(plugins=[PLUGIN, VALUE])
    ci, days, amounts = simulate_purchase_log(300, r=0.24, alpha=4.41, a=0.79, b=2.43, p=6.25, q=3.74, v=15.44,
                                              end_day=400, seed=3)
    bulk_load(crm, ci, days, amounts, 300)
    with crm.unit_of_work("test") as uow:
        out = value_services.run_analysis(uow, as_of=d(400), settings=ValueSettings(model="bg_nbd", time_unit="weeks"))
    assert out.summary["models"]["purchase"] is not None  # p_alive and clv are numbers, not NULL
    with crm.unit_of_work("test", read_only=True) as uow:
        rows = {r.customer_id: tuple(r) for r in uow.session.execute(uow.hooks.call("value_segment_columns", uow=uow))}
    return crm, rows


def mean(rows: dict[int, tuple[Any, ...]], i: int) -> float:
    return round(float(statistics.mean(r[i] for r in rows.values() if r[i] is not None)), 4)


@pytest.mark.parametrize(("field", "i", "op"), [("p_alive", 4, ">"), ("clv", 5, ">="), ("loyalty", 6, "<")])
def test_each_number_field_matches_the_published_rows(valued: tuple[CRM, dict[int, tuple[Any, ...]]], field: str,
                                                      i: int, op: str) -> None:
    crm, rows = valued
    cut = mean(rows, i)
    cmp = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__}[op]
    expected = {cid for cid, r in rows.items() if r[i] is not None and cmp(float(r[i]), cut)}
    assert 0 < len(expected) < len(rows)  # a real split
    assert ids(crm, f"{field} {op} {cut}") == expected


def test_churn_risk_matches_the_published_rows(valued: tuple[CRM, dict[int, tuple[Any, ...]]]) -> None:
    crm, rows = valued
    at_risk = {cid for cid, r in rows.items() if r[3] is True}
    assert 0 < len(at_risk) < len(rows)
    assert ids(crm, "churn_risk = true") == at_risk
    assert ids(crm, "churn_risk != true") == {cid for cid, r in rows.items() if r[3] is False}


def test_segment_and_tier_fields(valued: tuple[CRM, dict[int, tuple[Any, ...]]]) -> None:
    crm, rows = valued
    segment = rows[max(rows)][1]
    assert ids(crm, f'rfm_segment = "{segment}"') == {c for c, r in rows.items() if r[1] == segment}
    tiers = sorted({r[2] for r in rows.values()})
    assert len(tiers) > 2
    assert ids(crm, f'value_tier in ("{tiers[0]}", "{tiers[1]}")') == {c for c, r in rows.items() if r[2] in tiers[:2]}


class Override:
    """A plugin answering the hook first: marketing compiles against whatever is published."""

    @staticmethod
    @hookimpl(optionalhook=True, tryfirst=True)
    def value_segment_columns(uow: Any) -> Any:
        return select(Customer.id.label("customer_id"), literal("everyone").label("rfm_segment"),
                      literal("vip").label("value_tier"), literal(True).label("churn_risk"),
                      literal(0.5).label("p_alive"), literal(1.0).label("clv"), literal(2.0).label("loyalty")
                      ).where(Customer.external_ref.like("A%"))


def test_marketing_reads_through_the_hook(make_crm: Any) -> None:
    crm = make_crm(plugins=[PLUGIN, VALUE, ("override", Override)])
    s = Shop(crm)
    a1, a2, b = s.customer("A1"), s.customer("A2"), s.customer("B1")
    assert ids(crm, 'rfm_segment = "everyone" and value_tier = "vip"') == {a1, a2}
    assert ids(crm, "p_alive = 0.5 and clv < 2 and loyalty > 1.5 and churn_risk = true") == {a1, a2}
    assert ids(crm, 'not value_tier = "vip"') == {b}  # no published row: NULL, never a match


@pytest.mark.parametrize("field", sorted(segments.VALUE_FIELDS))
def test_without_value_analysis_each_field_is_one_clear_error(mcrm: CRM, field: str) -> None:
    value = {"str": '"x"', "bool": "true", "num": "1"}[segments.VALUE_FIELDS[field]]
    with pytest.raises(InvalidInput, match=rf"^invalid rule: field '{field}': needs the value_analysis plugin "
                                           r"\(crm plugins enable value_analysis, then crm value run\)$"):
        ids(mcrm, f"{field} = {value}")
