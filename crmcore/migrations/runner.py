"""Run alembic for the core and the plugins, on an open engine, without an alembic.ini."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, column, delete, insert, inspect, select, table, text

from crmcore.db.base import metadata
from crmcore.db.engine import read_only
from crmcore.errors import DatabaseError
from crmcore.migrations.branches import CORE_LABEL, CORE_VERSIONS, MigrationBranch

SCRIPT_LOCATION = Path(__file__).parent


def alembic_config(branches: Iterable[MigrationBranch]) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("path_separator", "os")
    locations = [str(CORE_VERSIONS)] + [str(b.versions.resolve()) for b in branches]
    cfg.set_main_option("version_locations", os.pathsep.join(dict.fromkeys(locations)).replace("%", "%%"))
    return cfg


MIGRATION_LOCK = 0x63726D6D6967  # "crmmig": the advisory lock key serialising migrations on PostgreSQL
VERSION_TABLE = table("alembic_version", column("version_num"))

# revision id of a plugin whose code is gone -> the revisions outside its branch it depends on
Remembered = dict[str, list[str]]


def _applied(conn: Connection) -> list[str]:
    if not inspect(conn).has_table("alembic_version"):
        return []
    return list(conn.scalars(select(VERSION_TABLE.c.version_num)))


def _stand_in(conn: Connection, script: ScriptDirectory, remembered: Remembered) -> list[str]:
    """Take out the rows of revisions no installed code knows (a plugin uninstalled while its
    branch is applied) so alembic can run; in their place put the core revisions they depend on
    when no other row implies them (alembic stores only heads, so an uninstalled plugin's head
    may be the only row that says where the core is). Returns the rows taken out."""
    rows = _applied(conn)
    unknown = [r for r in rows if not _known(script, r)]
    if not unknown:
        return []
    known = [r for r in rows if r not in unknown]
    for rev in unknown:
        if rev not in remembered:
            raise DatabaseError(f"the database has revision {rev}, which no installed plugin provides and the CRM "
                                "does not remember; reinstall the plugin that owns it")
    conn.execute(delete(VERSION_TABLE).where(VERSION_TABLE.c.version_num.in_(unknown)))
    implied = {r.revision for r in script.iterate_revisions(tuple(known), "base")} if known else set()
    for dep in dict.fromkeys(d for rev in unknown for d in remembered[rev]):
        if dep not in implied and _known(script, dep):
            conn.execute(insert(VERSION_TABLE).values(version_num=dep))
            implied |= {r.revision for r in script.iterate_revisions(dep, "base")}
    return unknown


def _put_back(conn: Connection, taken: list[str], remembered: Remembered) -> None:
    """Restore the rows :func:`_stand_in` took out; a stand-in the upgrade did not move goes again."""
    for rev in taken:
        for dep in remembered[rev]:
            conn.execute(delete(VERSION_TABLE).where(VERSION_TABLE.c.version_num == dep))
        conn.execute(insert(VERSION_TABLE).values(version_num=rev))


def _known(script: ScriptDirectory, rev: str) -> bool:
    try:
        return script.get_revision(rev) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for unknown revisions
        return False


def _run(engine: Engine, cfg: Config, remembered: Remembered, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """One alembic command in one transaction, with stand-ins for revisions of uninstalled plugins."""
    script = ScriptDirectory.from_config(cfg)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # one migration at a time (SQLite: BEGIN IMMEDIATE already)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        try:
            taken = _stand_in(conn, script, remembered)
            fn(cfg, *args, **kw)
            if taken:
                _put_back(conn, taken, remembered)
        except CommandError as e:
            raise DatabaseError(f"migration failed: {e}") from None
        finally:
            cfg.attributes.pop("connection", None)


def labels_with_revisions(script: ScriptDirectory) -> set[str]:
    """The branch labels some revision carries. A plugin whose versions folder is empty (its
    author deleted the scaffold's revision to write a first one of their own) has a branch that
    alembic does not know: there is nothing to run, show or compare for it yet."""
    return {label for rev in script.walk_revisions() for label in rev.branch_labels}


def upgrade(engine: Engine, branches: Sequence[MigrationBranch], labels: Sequence[str],
            remembered: Remembered | None = None) -> None:
    """Upgrade the given branch labels (``core`` first) to their heads, each in one transaction;
    an empty branch has nothing to upgrade."""
    cfg = alembic_config(branches)
    known = labels_with_revisions(ScriptDirectory.from_config(cfg))
    for label in labels:
        if label in known:
            _run(engine, cfg, remembered or {}, command.upgrade, f"{label}@head")


def downgrade_to_base(engine: Engine, branches: Sequence[MigrationBranch], label: str,
                      remembered: Remembered | None = None) -> None:
    """Undo every revision of ``label`` (nothing for an empty branch)."""
    cfg = alembic_config(branches)
    if label in labels_with_revisions(ScriptDirectory.from_config(cfg)):
        _run(engine, cfg, remembered or {}, command.downgrade, f"{label}@base")


def branch_record(branches: Sequence[MigrationBranch], branch: MigrationBranch) -> dict[str, object]:
    """What the core remembers of a plugin's branch: its label, table prefix, revision ids and the
    revisions outside the branch they depend on (enough to forget or purge it without its code)."""
    script = ScriptDirectory.from_config(alembic_config(branches))
    folder = branch.versions.resolve()
    mine = [r for r in script.walk_revisions() if r.path and Path(r.path).resolve().parent == folder]
    ids = {r.revision for r in mine}
    deps: list[str] = []
    for r in mine:
        for d in [*(r._all_down_revisions or ()), *(r._resolved_dependencies or ())]:
            if d not in ids and d not in deps:
                deps.append(d)
    return {"label": branch.label, "table_prefix": branch.table_prefix, "revisions": sorted(ids), "depends_on": deps}


def forget_revisions(conn: Connection, revisions: Sequence[str], depends_on: Sequence[str],
                     branches: Sequence[MigrationBranch]) -> None:
    """Delete a branch's rows from alembic_version; put back the core revision they were hiding."""
    rows = _applied(conn)
    mine = [r for r in rows if r in revisions]
    if not mine:
        return
    conn.execute(delete(VERSION_TABLE).where(VERSION_TABLE.c.version_num.in_(mine)))
    script = ScriptDirectory.from_config(alembic_config(branches))
    known = [r for r in rows if r not in mine and _known(script, r)]
    implied = {r.revision for r in script.iterate_revisions(tuple(known), "base")} if known else set()
    for dep in depends_on:
        if dep not in implied and _known(script, dep):
            conn.execute(insert(VERSION_TABLE).values(version_num=dep))
            implied |= {r.revision for r in script.iterate_revisions(dep, "base")}


def current_heads(engine: Engine, branches: Sequence[MigrationBranch],
                  remembered: Remembered | None = None) -> dict[str, str | None]:
    """Applied revision per branch label (None when the branch is not applied).

    alembic stores only heads, and a plugin head that ``depends_on`` a core revision hides it,
    so each branch's current revision is the newest one of its chain among all applied
    ancestors. Revisions the installed code does not know (a plugin uninstalled without purge)
    appear as ``unknown:REV``.
    """
    script = ScriptDirectory.from_config(alembic_config(branches))
    with read_only(engine.connect()) as conn:  # a read: never the SQLite write lock
        applied = set(MigrationContext.configure(conn).get_current_heads())
    out: dict[str, str | None] = {}
    known = []
    for rev in sorted(applied):
        if _known(script, rev):
            known.append(rev)
        else:
            out[f"unknown:{rev}"] = rev
            known += [d for d in (remembered or {}).get(rev, []) if _known(script, d)]
    ancestors = {r.revision for r in script.iterate_revisions(tuple(known), "base")} if known else set()
    labels = labels_with_revisions(script)
    for label in [CORE_LABEL, *(b.label for b in branches)]:
        current = None
        walked: Script | None = script.get_revision(f"{label}@head") if label in labels else None
        while walked is not None:
            if walked.revision in ancestors:
                current = walked.revision
                break
            down = walked.down_revision
            walked = script.get_revision(down) if isinstance(down, str) else None
        out[label] = current
    return out


def branch_heads(branches: Sequence[MigrationBranch]) -> dict[str, str | None]:
    """The newest revision of each branch; None for a branch with no revision yet."""
    script = ScriptDirectory.from_config(alembic_config(branches))
    labels = labels_with_revisions(script)
    out: dict[str, str | None] = {}
    for label in [CORE_LABEL, *(b.label for b in branches)]:
        head = script.get_revision(f"{label}@head") if label in labels else None
        out[label] = head.revision if head is not None else None
    return out


def schema_diff(engine: Engine, include_tables: set[str]) -> list[object]:
    """Differences between the models and the database, for the given tables (empty = in sync)."""
    with read_only(engine.connect()) as conn:  # a read: never the SQLite write lock
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, type_, reflected, compare_to: (
                    type_ != "table" or name in include_tables
                ),
            },
        )
        return list(compare_metadata(ctx, metadata))


def tables_with_prefix(bind: Engine | Connection, prefix: str) -> list[str]:
    """The tables whose names start with ``prefix`` (a plugin's, by its branch label)."""
    if isinstance(bind, Engine):
        with read_only(bind.connect()) as conn:  # a read: never the SQLite write lock
            return tables_with_prefix(conn, prefix)
    return sorted(t for t in inspect(bind).get_table_names() if t.startswith(prefix))


__all__ = ["alembic_config", "branch_heads", "branch_record", "current_heads", "downgrade_to_base", "forget_revisions",
           "labels_with_revisions", "schema_diff", "upgrade"]
