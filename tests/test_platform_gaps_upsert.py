"""``keyed_upsert`` honours column defaults in mixed batches, and stamps audits with ``uow.now()``.

A batch where some new rows give a defaulted NOT NULL column and others leave it out must be
written in one go (each left-out column takes its default, Python-side or server-side), never
through the importer's slow row-by-row retry, on both engines.
"""
from __future__ import annotations

import itertools
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Integer, MetaData, String, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crmcore import hookimpl
from crmcore.bulk.importer import run_import
from crmcore.bulk.readers import SourceRow
from crmcore.bulk.registry import BatchOutcome, BulkEntity, keyed_upsert
from crmcore.db.engine import create_crm_engine
from crmcore.models import AuditEntry
from crmcore.testing import FROZEN_AT


class Base(DeclarativeBase):
    metadata = MetaData()


class GapItem(Base):
    __tablename__ = "gaps_upsert_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="new")  # NOT NULL, Python-side default
    priority: Mapped[int] = mapped_column(Integer, server_default=text("3"))  # NOT NULL, the database's default


class ItemRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_ref: str
    name: str
    status: str | None = None
    priority: int | None = None


CALLS: list[int] = []  # the size of every write_batch call: one per batch, or one per row on a retry


def write_items(uow: Any, rows: list[tuple[int, ItemRow]]) -> BatchOutcome:
    CALLS.append(len(rows))
    out, _created, _updated = keyed_upsert(uow, GapItem, [(line, r.model_dump(exclude_unset=True)) for line, r in rows],
                                           audit_entity="gap_item")
    return out


ITEMS = BulkEntity(name="gap_items", columns=("external_ref", "name", "status", "priority"),
                   required=("external_ref", "name"), key="external_ref", schema=ItemRow, write_batch=write_items)


@hookimpl
def crm_register_bulk_entities(register: Any) -> None:
    register(ITEMS)


PLUGIN = types.ModuleType("crm_gapitems")
PLUGIN.crm_register_bulk_entities = crm_register_bulk_entities  # type: ignore[attr-defined]


@pytest.fixture
def items_crm(make_crm, crm_url):
    engine = create_crm_engine(crm_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    CALLS.clear()
    yield make_crm(plugins=[("gapitems", PLUGIN)])
    Base.metadata.drop_all(engine)
    engine.dispose()


def stored(crm) -> dict[str, tuple[str, str, int]]:
    with crm.unit_of_work("test", read_only=True) as uow:
        rows = uow.session.execute(select(GapItem.external_ref, GapItem.name, GapItem.status, GapItem.priority))
        return {ref: (name, status, prio) for ref, name, status, prio in rows}


def source(specs: list[dict[str, str]]) -> list[SourceRow]:
    return [SourceRow(i + 2, spec) for i, spec in enumerate(specs)]


def test_a_mixed_batch_is_written_in_one_go_with_the_defaults(items_crm):
    specs = [{"external_ref": "A", "name": "given both", "status": "open", "priority": "1"},
             {"external_ref": "B", "name": "leaves both out"},
             {"external_ref": "C", "name": "gives status", "status": "won"},
             {"external_ref": "D", "name": "gives priority", "priority": "7"}]
    res = run_import(items_crm, "gap_items", source(specs), batch_size=100)
    assert (res.inserted, res.rejected, res.batches) == (4, 0, 1), res.first_errors
    assert CALLS == [4]  # one write of the whole batch: no row-by-row retry
    assert stored(items_crm) == {"A": ("given both", "open", 1), "B": ("leaves both out", "new", 3),
                                 "C": ("gives status", "won", 3), "D": ("gives priority", "new", 7)}


def test_keyed_upsert_called_directly_on_a_mixed_batch(items_crm):
    rows = [(2, {"external_ref": "X", "name": "x", "priority": 9}), (3, {"external_ref": "Y", "name": "y"}),
            (4, {"external_ref": "Z", "name": "z", "status": "lost"})]
    with items_crm.unit_of_work("test") as uow:
        out, created, updated = keyed_upsert(uow, GapItem, rows)
    assert (out.inserted, len(created), updated) == (3, 3, [])
    assert stored(items_crm) == {"X": ("x", "new", 9), "Y": ("y", "new", 3), "Z": ("z", "lost", 3)}


def test_audit_entries_take_the_units_clock(items_crm, frozen_clock):
    run_import(items_crm, "gap_items", source([{"external_ref": "A", "name": "a"}]))
    frozen_clock.advance(days=2)
    res = run_import(items_crm, "gap_items", source([{"external_ref": "A", "name": "renamed"}]))
    assert res.updated == 1
    with items_crm.unit_of_work("test", read_only=True) as uow:
        entries = uow.session.execute(select(AuditEntry.action, AuditEntry.at).where(AuditEntry.entity == "gap_item")
                                      .order_by(AuditEntry.id)).all()
    assert [(a, at.replace(tzinfo=FROZEN_AT.tzinfo)) for a, at in entries] == [
        ("import-create", FROZEN_AT), ("import-update", FROZEN_AT.replace(day=FROZEN_AT.day + 2))]


_refs = itertools.count()
ROW = st.fixed_dictionaries({}, optional={"status": st.sampled_from(["open", "won", "lost"]),
                                          "priority": st.integers(0, 9).map(str)})


@settings(max_examples=25)
@given(specs=st.lists(ROW, min_size=1, max_size=12))
def test_any_mix_of_given_and_left_out_defaults_is_one_write(items_crm, specs):
    batch = [{"external_ref": f"H{next(_refs)}", "name": "h", **spec} for spec in specs]
    CALLS.clear()
    res = run_import(items_crm, "gap_items", source(batch), batch_size=100)
    assert (res.inserted, res.rejected) == (len(batch), 0), res.first_errors
    assert [len(batch)] == CALLS
    have = stored(items_crm)
    for spec in batch:
        assert have[spec["external_ref"]] == ("h", spec.get("status", "new"), int(spec.get("priority", "3")))
    with items_crm.unit_of_work("test", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(GapItem).where(GapItem.status.is_(None))) == 0
