"""Plugin author tools: ``crm plugins new`` (a working plugin from a template) and
``crm db revision --plugin`` (the next revision of a plugin's alembic branch).

The template (``template/``, shipped as package data) is the model plugin, in the standard
layout the shipped plugins follow: pyproject with the entry point, ``plugin.py`` (declarations
and hooks only), ``settings.py``, a table with an enum and a Money column and its migration
branch, ``schemas.py``, ``services.py``, ``views.py`` (360° section, timeline, merge), ``cli.py``,
``routes.py``, ``bulk.py``, ``testing.py`` (fixtures), the console, and tests of each that pass
on SQLite and PostgreSQL. Placeholders are ``string.Template`` fields (``${id}``, ``${pkg}``, ``${cls}``,
``${title}``, ``${ID}``, ``${dist}``); ``__pkg__`` and ``__id__`` in paths are renamed. The
standard library's Template is enough here: no logic in the files, and ``$`` never appears in
Python or TOML otherwise.
"""
from __future__ import annotations

import argparse
import keyword
import re
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from crmcore.app import CRM

TEMPLATE = Path(__file__).parent / "template"
SUFFIX = ".tmpl"
_ID = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
#: names that really clash, with the reason (besides the core's commands and Python keywords)
RESERVED = {"crm": "the name of the command itself", "core": "the label of the core's migration branch",
            "sdk": "the core's plugin SDK module (crmcore.sdk)"}


def check_plugin_id(plugin_id: str) -> None:
    """A plugin id is a Python identifier in lower case that clashes with nothing of the core."""
    if not _ID.match(plugin_id) or plugin_id.endswith("_") or "__" in plugin_id:
        raise InvalidInput(f"invalid plugin name {plugin_id!r}: use 2-31 lower-case letters, digits and single "
                           "underscores, starting with a letter (it becomes the id, table prefix and command)",
                           [("name", "not a plugin id")])
    from crmcore.cli import CORE_COMMANDS

    reason = (RESERVED.get(plugin_id) or ("a Python keyword" if keyword.iskeyword(plugin_id) else None)
              or (f"a core command (crm {plugin_id})" if plugin_id in CORE_COMMANDS else None))
    if reason:
        raise InvalidInput(f"invalid plugin name {plugin_id!r}: it is reserved ({reason})", [("name", "reserved")])
    core = sorted(t for t in _core_tables() if t.startswith(f"{plugin_id}_"))
    if core:
        raise InvalidInput(f"invalid plugin name {plugin_id!r}: its table prefix {plugin_id}_ would cover the core "
                           f"table {core[0]}", [("name", "table prefix clash")])


def _core_tables() -> set[str]:
    import crmcore.models  # noqa: F401 - the core tables must be mapped
    from crmcore.db.base import Base

    return {str(getattr(m.local_table, "name", "")) for m in Base.registry.mappers if m.class_.__module__.startswith("crmcore.")}


def names(plugin_id: str) -> dict[str, str]:
    words = plugin_id.split("_")
    return {
        "id": plugin_id,
        "ID": plugin_id.upper(),
        "pkg": f"crm_{plugin_id}",
        "cls": "".join(w.capitalize() for w in words),
        "title": " ".join(words).capitalize(),
        "dist": plugin_id.replace("_", "-"),
    }


def new_plugin(plugin_id: str, directory: Path) -> list[Path]:
    """Write the plugin into ``directory / crm-<id>``; returns the files written.

    Refuses (nothing written) when the target exists and is not empty.
    """
    check_plugin_id(plugin_id)
    values = names(plugin_id)
    target = directory / f"crm-{values['dist']}"
    if directory.exists() and not directory.is_dir():
        raise Conflict(f"{directory} is not a directory; choose another --dir")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} already exists and is not empty; choose another --dir")
    planned: list[tuple[Path, str]] = []
    for src in sorted(TEMPLATE.rglob(f"*{SUFFIX}")):
        rel = src.relative_to(TEMPLATE).as_posix().removesuffix(SUFFIX)
        rel = rel.replace("__pkg__", values["pkg"]).replace("__id__", plugin_id)
        text = string.Template(src.read_text(encoding="utf-8")).substitute(values)
        planned.append((target / rel, text))
    written = []
    for path, text in planned:  # rendered first, so a template error writes nothing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# -- revisions ----------------------------------------------------------------------------------

def _slug(message: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "revision"


def write_revision(crm: CRM, plugin_id: str, message: str, *, autogenerate: bool = False) -> Path:
    """Write the next revision of ``plugin_id``'s branch (the first one when it has none).

    With ``autogenerate`` the plugin's tables (``<prefix>*``, nothing else) are compared with the
    database, which must be at the branch's head so only the new changes are written.
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from crmcore.db.base import metadata
    from crmcore.migrations import runner

    if not message.strip() or "\n" in message:
        raise InvalidInput("give a one-line message with -m", [("message", "empty or several lines")])
    by_plugin = crm.migration_branches()
    if plugin_id not in by_plugin:
        raise NotFound("plugin", f"{plugin_id!r} (installed plugins with migrations: {', '.join(sorted(by_plugin)) or 'none'})")
    branches = by_plugin[plugin_id]
    if len(branches) != 1:
        raise Conflict(f"plugin {plugin_id!r} declares {len(branches)} migration branches; write the revision with alembic")
    (branch,) = branches
    all_branches = [b for bs in by_plugin.values() for b in bs]
    branch.versions.mkdir(parents=True, exist_ok=True)
    cfg = _quiet(runner.alembic_config(all_branches))
    script = ScriptDirectory.from_config(cfg)
    existing = sorted(p for p in branch.versions.glob("*.py") if not p.name.startswith("__"))
    head = runner.branch_heads([branch]).get(branch.label) if existing else None
    rev_id = f"{branch.label}_{len(existing) + 1:04d}"
    while _known(script, rev_id):
        rev_id = f"{rev_id}a"
    where: dict[str, Any] = ({"head": "base", "branch_label": branch.label, "depends_on": "0001_core"} if head is None
                                else {"head": f"{branch.label}@head"})
    if not autogenerate:  # an empty revision: alembic does not run env.py, no database needed
        script_obj = command.revision(cfg, message=message, rev_id=rev_id, version_path=str(branch.versions), **where)
        return Path(_path_of(script_obj))
    current = runner.current_heads(crm.engine, all_branches)
    if head is not None and current.get(branch.label) != head:
        raise Conflict(f"the database is at {current.get(branch.label) or 'no revision'} of branch {branch.label}, not its "
                       f"head {head}; run `crm plugins enable {plugin_id}` or `crm db upgrade` first (autogenerate "
                       "compares the models with an up-to-date database)")
    # alembic wants the database at every head it knows: show it only the branches applied here
    applied = [b for b in all_branches if b is branch or current.get(b.label) is not None]
    cfg = _quiet(runner.alembic_config(applied))
    cfg.attributes["include_tables"] = {t for t in metadata.tables if t.startswith(branch.table_prefix)}
    try:
        with crm.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            script_obj = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id,
                                          version_path=str(branch.versions), **where)
    except CommandError as e:
        raise Conflict(f"cannot autogenerate a revision of {branch.label}: {e}; run `crm db upgrade` first") from None
    return Path(_path_of(script_obj))


def _quiet(cfg: Any) -> Any:
    """No "Generating ..." lines from alembic: the command prints the one line that matters."""
    cfg.cmd_opts = argparse.Namespace(quiet=True)
    return cfg


def _known(script: object, rev: str) -> bool:
    try:
        return script.get_revision(rev) is not None  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - alembic raises several kinds for unknown revisions
        return False


def _path_of(script_obj: object) -> str:
    if isinstance(script_obj, list):
        script_obj = script_obj[0]
    return str(script_obj.path)  # type: ignore[attr-defined]
