"""Run alembic for the core and the plugins, on an open engine, without an alembic.ini."""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect

from crmcore.db.base import metadata
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


def _run(engine: Engine, cfg: Config, fn, *args, **kw) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        try:
            fn(cfg, *args, **kw)
        except CommandError as e:
            raise DatabaseError(f"migration failed: {e}") from None
        finally:
            cfg.attributes.pop("connection", None)


def upgrade(engine: Engine, branches: Sequence[MigrationBranch], labels: Sequence[str]) -> None:
    """Upgrade the given branch labels (``core`` first) to their heads, each in one transaction."""
    cfg = alembic_config(branches)
    for label in labels:
        _run(engine, cfg, command.upgrade, f"{label}@head")


def downgrade_to_base(engine: Engine, branches: Sequence[MigrationBranch], label: str) -> None:
    cfg = alembic_config(branches)
    _run(engine, cfg, command.downgrade, f"{label}@base")


def current_heads(engine: Engine, branches: Sequence[MigrationBranch]) -> dict[str, str | None]:
    """Applied revision per branch label (None when the branch is not applied).

    alembic stores only heads, and a plugin head that ``depends_on`` a core revision hides it,
    so each branch's current revision is the newest one of its chain among all applied
    ancestors. Revisions the installed code does not know (a plugin uninstalled without purge)
    appear as ``unknown:REV``.
    """
    script = ScriptDirectory.from_config(alembic_config(branches))
    with engine.connect() as conn:
        applied = set(MigrationContext.configure(conn).get_current_heads())
    out: dict[str, str | None] = {}
    known = []
    for rev in sorted(applied):
        try:
            script.get_revision(rev)
            known.append(rev)
        except Exception:  # noqa: BLE001 - alembic raises several kinds for unknown revisions
            out[f"unknown:{rev}"] = rev
    ancestors = {r.revision for r in script.iterate_revisions(tuple(known), "base")} if known else set()
    for label in [CORE_LABEL, *(b.label for b in branches)]:
        current = None
        rev = script.get_revision(f"{label}@head")
        while rev is not None:
            if rev.revision in ancestors:
                current = rev.revision
                break
            down = rev.down_revision
            rev = script.get_revision(down) if isinstance(down, str) else None
        out[label] = current
    return out


def branch_heads(branches: Sequence[MigrationBranch]) -> dict[str, str]:
    script = ScriptDirectory.from_config(alembic_config(branches))
    return {label: script.get_revision(f"{label}@head").revision for label in [CORE_LABEL, *(b.label for b in branches)]}


def schema_diff(engine: Engine, include_tables: set[str]) -> list[object]:
    """Differences between the models and the database, for the given tables (empty = in sync)."""
    with engine.connect() as conn:
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


def tables_with_prefix(engine: Engine, prefix: str) -> list[str]:
    return sorted(t for t in inspect(engine).get_table_names() if t.startswith(prefix))


__all__ = ["alembic_config", "branch_heads", "current_heads", "downgrade_to_base", "schema_diff", "upgrade"]
