"""The sales alembic branch: upgrade, in sync with the models, downgrade to base, upgrade again."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import crm_sales_automation.plugin as PLUGIN
import pytest
from alembic import command
from crm_sales_automation import services
from crm_sales_automation.schemas import ActivityCreate, OpportunityCreate
from crm_sales_automation.testing import Sales
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from crmcore import CRM, MigrationBranch
from crmcore.migrations import runner

TABLES = {"sales_pipelines", "sales_stages", "sales_leads", "sales_lead_assessments", "sales_conversions",
          "sales_opportunities", "sales_stage_changes", "sales_objections", "sales_activities", "sales_quotas",
          "sales_models", "sales_referrals"}
HEAD = "sales_0005"


def test_branch_upgrade_matches_models_and_downgrades_cleanly(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        labels = crm.upgrade()
        assert labels[0] == "core" and "sales_automation" in labels
        assert set(runner.tables_with_prefix(crm.engine, "sales_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] == HEAD

        # the migrated schema works: a deal from creation to win
        s = Sales(crm)
        oid = s.opp(s.customer("Acme"), "100")
        s.move(oid, "closing")
        s.win(oid)
        with crm.unit_of_work() as uow:
            assert services.opportunity_detail(uow, oid)["status"] == "won"

        runner.downgrade_to_base(crm.engine, [PLUGIN.MIGRATIONS], "sales_automation")
        assert runner.tables_with_prefix(crm.engine, "sales_") == []
        assert inspect(crm.engine).has_table("customers")  # the core is untouched
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] is None

        crm.upgrade()
        assert set(runner.tables_with_prefix(crm.engine, "sales_")) == TABLES
        assert runner.schema_diff(crm.engine, TABLES) == []
    finally:
        crm.close()


def test_purge_plan_lists_the_plugin_tables(empty_database_url: str) -> None:
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade()
        assert set(crm.purge_plan("sales_automation")) == TABLES
    finally:
        crm.close()


def _old_label_branch(tmp_path: Path) -> MigrationBranch:
    """The branch as it shipped before the rename: the same revisions, labelled ``sales``."""
    folder = tmp_path / "old_versions"
    folder.mkdir()
    for src in PLUGIN.MIGRATIONS.versions.glob("sales_*.py"):
        text = src.read_text(encoding="utf-8").replace("branch_labels = ('sales_automation',)", "branch_labels = ('sales',)")
        (folder / src.name).write_text(text, encoding="utf-8")
    assert "branch_labels = ('sales',)" in (folder / "sales_0001_tables.py").read_text(encoding="utf-8")
    return MigrationBranch(label="sales", versions=folder)


def test_a_database_migrated_under_the_old_label_upgrades(empty_database_url: str, tmp_path: Path) -> None:
    """A database at sales_0001 under the old ``sales`` label, with a deal in it, upgrades with the
    renamed branch to its head; the data stays and the branch is reported under its new label."""
    old = _old_label_branch(tmp_path)
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade(plugin_ids=[])  # the core only
        cfg = runner.alembic_config([old])
        with crm.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "sales_0001")
        assert runner.current_heads(crm.engine, [old])["sales"] == "sales_0001"
        crm._remember("sales_automation", [old], [old])  # what the core recorded then: label "sales"
        assert crm.remembered()["sales_automation"].branches[0]["label"] == "sales"
        with crm.engine.begin() as conn:
            conn.execute(text("INSERT INTO sales_pipelines (name, is_default, created_at) VALUES ('old', true, :t)"),
                         {"t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})

        labels = crm.upgrade()
        assert "sales_automation" in labels and "sales" not in labels
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] == HEAD
        assert runner.schema_diff(crm.engine, TABLES) == []
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM sales_pipelines")).scalars().all() == ["old"]
        assert crm.remembered()["sales_automation"].branches[0]["label"] == "sales_automation"
        assert set(crm.purge_plan("sales_automation")) == TABLES  # the prefix is still sales_
    finally:
        crm.close()


def test_sales_0003_frees_lead_sources_and_its_downgrade_maps_new_words_to_other(empty_database_url: str) -> None:
    """Through the migrations (not create_all): a configured source is stored after sales_0003;
    the downgrade turns it into ``other`` and the old CHECK constraint holds again."""
    config = {"vocabularies": {"lead_sources": ["web", "badge_scan", "other"]}}
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config=config)
    try:
        crm.upgrade()
        s = Sales(crm)
        lid = s.lead("Jana", source="badge_scan", points={"need": 4})
        other = s.lead("Otto", status="qualified", points={"need": 2, "power": 3})
        with crm.unit_of_work() as uow:
            conv = services.convert(uow, other, new=True, opportunity=OpportunityCreate(title="Kitchen", amount="10"))
            services.add_activity(uow, ActivityCreate(kind="call", subject="call back"), lead_id=lid)
        children = _lead_children(crm)
        assert children["links"] == [(conv.opportunity_id, other)] and children["sales_conversions"] == 1
        cfg = runner.alembic_config([PLUGIN.MIGRATIONS])
        with crm.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "sales_0002")
        assert _lead_children(crm) == children  # nothing went with the copied table (SQLite)
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT source FROM sales_leads WHERE id = :i"), {"i": lid}).scalar_one() == "other"
        with pytest.raises(IntegrityError), crm.engine.begin() as conn:
            conn.execute(text("UPDATE sales_leads SET source = 'badge_scan' WHERE id = :i"), {"i": lid})
        crm.upgrade()
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] == HEAD
        assert runner.schema_diff(crm.engine, TABLES) == []
        assert _lead_children(crm) == children
    finally:
        crm.close()


def _lead_children(crm: CRM) -> dict[str, object]:
    """What points at leads: row counts of the CASCADE children and the deals' lead links."""
    with crm.engine.connect() as conn:
        out: dict[str, object] = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                                  for t in ("sales_lead_assessments", "sales_conversions", "sales_activities")}
        out["links"] = [tuple(r) for r in conn.execute(text("SELECT id, lead_id FROM sales_opportunities "
                                                            "WHERE lead_id IS NOT NULL ORDER BY id"))]
    return out


def _alembic(crm: CRM, verb: str, revision: str) -> None:
    cfg = runner.alembic_config([PLUGIN.MIGRATIONS])
    with crm.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


def test_sales_0005_adds_the_objection_method_null_for_existing_rows_and_drops_it(empty_database_url: str) -> None:
    """An objection stored at sales_0004 keeps its row through sales_0005 with ``method`` NULL; a
    method written after it is dropped by the downgrade (the rows stay), and upgrading again works."""
    crm = CRM.open(empty_database_url, plugins=[PLUGIN], entry_points=False, create=True, config={})
    try:
        crm.upgrade(plugin_ids=[])  # the core only
        _alembic(crm, "upgrade", "sales_0004")
        s = Sales(crm)
        oid = s.opp(s.customer("Acme"), "100")  # the ORM's INSERT names no method column: raw SQL for the objection
        with crm.engine.begin() as conn:
            conn.execute(text("INSERT INTO sales_objections (opportunity_id, kind, description, resolved, raised_by, "
                              "raised_at) VALUES (:o, 'price', 'too dear', true, 'test', :t)"),
                         {"o": oid, "t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
        assert "method" not in {c["name"] for c in inspect(crm.engine).get_columns("sales_objections")}
        _alembic(crm, "upgrade", "sales_0005")
        assert runner.current_heads(crm.engine, [PLUGIN.MIGRATIONS])["sales_automation"] == HEAD
        assert runner.schema_diff(crm.engine, TABLES) == []
        with crm.engine.begin() as conn:
            assert conn.execute(text("SELECT description, method FROM sales_objections")).all() == [("too dear", None)]
            conn.execute(text("UPDATE sales_objections SET method = 'compare_value'"))
        _alembic(crm, "downgrade", "sales_0004")
        assert "method" not in {c["name"] for c in inspect(crm.engine).get_columns("sales_objections")}
        assert "ix_sales_objections_method" not in {i["name"] for i in inspect(crm.engine).get_indexes("sales_objections")}
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT opportunity_id, description FROM sales_objections")).all() == [(oid, "too dear")]
        crm.upgrade()
        assert runner.schema_diff(crm.engine, TABLES) == []
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT method FROM sales_objections")).scalars().all() == [None]
    finally:
        crm.close()
