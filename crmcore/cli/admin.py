"""`crm init`, `crm db …`, `crm plugins …`, `crm user …`, `crm audit`."""
from __future__ import annotations

from typing import Any

import click

from crmcore import permissions
from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, table
from crmcore.cli.params import TEXT
from crmcore.errors import DatabaseError
from crmcore.migrations import runner
from crmcore.migrations.branches import CORE_LABEL


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(db)
    cli.add_command(plugins)
    from crmcore.cli import users
    from crmcore.scaffold import cli as scaffold_cli

    users.register(cli)
    cli.add_command(audit)
    scaffold_cli.register(cli)  # `crm plugins new`, `crm db revision`


@click.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the database (if needed) and bring the core and enabled plugins up to date."""
    crm = app.crm(create=True)
    labels = crm.upgrade()
    click.echo(f"initialised {crm.engine.url.render_as_string(hide_password=True)} ({', '.join(labels)} up to date)")
    if permissions.single_user(crm):
        click.echo(permissions.SINGLE_USER_NOTE)


@click.group(cls=CRMGroup)
def db() -> None:
    """Migrations: upgrade, current, check."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Upgrade the core and every enabled plugin to their latest revisions."""
    crm = app.crm()
    permissions.check_actor(crm, app.actor, "plugin.manage")
    labels = crm.upgrade()
    click.echo(f"up to date: {', '.join(labels)}")


def _migration_rows(app: AppContext) -> list[dict[str, Any]]:
    crm = app.crm()
    installed = crm.installed_plugins()
    by_plugin = crm.migration_branches(installed)
    branches = [b for bs in by_plugin.values() for b in bs]
    current = runner.current_heads(crm.engine, branches, crm.remembered_revisions())
    heads = runner.branch_heads(branches)
    rows: list[dict[str, Any]] = []
    for label in [CORE_LABEL, *(b.label for b in branches)]:
        cur = current.get(label)
        state = "not applied" if cur is None else ("up to date" if cur == heads.get(label) else "behind")
        rows.append({"branch": label, "current": cur, "head": heads.get(label), "state": state})
    owners = {rev: (pid, b["label"]) for pid, r in crm.remembered().items() for b in r.branches for rev in b.get("revisions", [])}
    for label, rev in current.items():
        if label.startswith("unknown:"):
            pid, branch = owners.get(rev, (None, "?"))
            state = (f"revision of uninstalled plugin {pid!r} (`crm plugins remove {pid} --purge` drops it)" if pid
                     else "revision of an uninstalled plugin")
            rows.append({"branch": branch, "current": rev, "head": None, "state": state})
    return rows


@db.command("current")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def db_current(app: AppContext, as_json: bool) -> None:
    """The applied revision of each branch."""
    rows = _migration_rows(app)
    if as_json:
        emit_json(rows)
    else:
        table("migrations", ["branch", "current", "head", "state"], [list(r.values()) for r in rows])


@db.command("check")
@pass_app
def db_check(app: AppContext) -> None:
    """Fail (exit 2) when the database schema does not match the models, saying what will fix it."""
    crm = app.crm()
    diff = runner.schema_diff(crm.engine, crm.managed_tables())
    if not diff:
        click.echo("schema matches the models")
        return
    for d in diff:
        click.echo(f"  {d}", err=True)
    enabled = crm.enabled_ids() | set(crm.hooks.plugins)
    behind = [r["branch"] for r in _migration_rows(app)
              if r["state"] != "up to date" and (r["branch"] == CORE_LABEL or _owner(crm, r["branch"]) in enabled)]
    where = ", ".join(sorted(_diff_tables(diff))) or "the schema"
    if behind:
        raise DatabaseError(f"the schema differs from the models in {len(diff)} place(s) ({where}); branch(es) "
                            f"{', '.join(behind)} are behind: run `crm db upgrade`")
    raise DatabaseError(
        f"the schema differs from the models in {len(diff)} place(s) ({where}) although every branch is at its "
        "latest revision, so `crm db upgrade` will not fix it: the tables were changed by hand (undo the change, "
        "or restore a backup), or a model changed without a migration (its author adds one with "
        "`crm db revision --plugin ID -m MSG --autogenerate`, then `crm db upgrade`)")


def _owner(crm: object, label: str) -> str | None:
    for pid, branches in crm.migration_branches().items():  # type: ignore[attr-defined]
        if any(b.label == label for b in branches):
            return pid
    return None


def _diff_tables(diff: list[object]) -> set[str]:
    """The table names an alembic diff mentions (tuples of (op, object, ...) or lists of them)."""
    out: set[str] = set()
    for d in diff:
        items = d if isinstance(d, list) else [d]
        for item in items:
            for part in item if isinstance(item, tuple) else ():
                name = getattr(part, "name", None) if hasattr(part, "columns") else None
                table = getattr(part, "table", None)
                if name and hasattr(part, "metadata"):
                    out.add(name)
                elif table is not None and getattr(table, "name", None):
                    out.add(table.name)
                elif isinstance(part, str) and part in crm_tables():
                    out.add(part)
    return out


def crm_tables() -> set[str]:
    from crmcore.db.base import metadata

    return set(metadata.tables)


@click.group(cls=CRMGroup)
def plugins() -> None:
    """List, enable, disable and remove plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def plugins_list(app: AppContext, as_json: bool) -> None:
    """Installed plugins, their state and migrations, and the ones that failed to import."""
    crm = app.crm()
    installed = crm.installed_plugins()
    enabled = crm.enabled_ids()
    by_plugin = crm.migration_branches(installed)
    branches = [b for bs in by_plugin.values() for b in bs]
    current = runner.current_heads(crm.engine, branches, crm.remembered_revisions()) if crm.initialised else {}
    heads = runner.branch_heads(branches)
    rows: list[dict[str, Any]] = []
    for pid, info in sorted(installed.items()):
        labels = [b.label for b in by_plugin.get(pid, [])]
        migration = ", ".join(
            f"{lb}: " + ("not applied" if current.get(lb) is None else ("up to date" if current.get(lb) == heads.get(lb) else "behind"))
            for lb in labels
        ) or "-"
        error = crm.unavailable[pid].error if pid in crm.unavailable else info.error
        rows.append({
            "id": pid, "version": info.version, "installed": info.source == "entry_point",
            "enabled": pid in enabled or info.source == "code",
            "loaded": pid in crm.hooks.plugins,
            "requires": list(info.requires), "migrations": migration, "error": error, "description": info.description,
        })
    remembered = crm.remembered() if crm.initialised else {}
    for pid in sorted((enabled | set(remembered)) - set(installed)):  # uninstalled, its data still here
        labels = [b["label"] for b in remembered[pid].branches] if pid in remembered else []
        rows.append({
            "id": pid, "version": None, "installed": False, "enabled": pid in enabled, "loaded": False, "requires": [],
            "migrations": ", ".join(f"{lb}: applied, code missing" for lb in labels) or "-",
            "error": ("enabled but not installed: re-install it, or `crm plugins disable " + pid + "`" if pid in enabled
                      else "not installed; its tables remain until `crm plugins remove " + pid + " --purge`"),
            "description": "",
        })
    if as_json:
        emit_json(rows)
        return
    table("plugins", ["id", "version", "enabled", "requires", "migrations", "error"],
          [[r["id"], r["version"], "yes" if r["enabled"] else "no", ", ".join(r["requires"]) or "-", r["migrations"], r["error"] or ""]
           for r in rows])
    if permissions.single_user(crm):
        click.echo(permissions.SINGLE_USER_NOTE)


@plugins.command("enable")
@click.argument("plugin_id")
@pass_app
def plugins_enable(app: AppContext, plugin_id: str) -> None:
    """Check requirements, run the plugin's migrations and enable it (idempotent)."""
    permissions.check_actor(app.crm(), app.actor, "plugin.manage")
    info = app.crm().enable_plugin(plugin_id, actor=app.actor)  # audited in the enable transaction
    replayed = dict(info.replayed)
    merges = replayed.pop("merges", 0)
    moved = "".join(f", {n} {t}" for t, n in sorted(replayed.items()))
    click.echo(f"enabled {plugin_id} {info.version or ''}".rstrip()
               + (f" (replayed {merges} merge(s) made while it was disabled{moved})" if merges else ""))


@plugins.command("disable")
@click.argument("plugin_id")
@pass_app
def plugins_disable(app: AppContext, plugin_id: str) -> None:
    """Stop calling the plugin's hooks and hide its commands; its data stays."""
    permissions.check_actor(app.crm(), app.actor, "plugin.manage")
    app.crm().disable_plugin(plugin_id, actor=app.actor)  # audited in the same transaction
    click.echo(f"disabled {plugin_id} (its data is kept)")


@plugins.command("remove")
@click.argument("plugin_id")
@click.option("--purge", is_flag=True, required=True, help="Drop the plugin's tables (required: removal deletes data).")
@click.option("--dry-run", is_flag=True, help="Only show which tables and how many rows would go.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def plugins_remove(app: AppContext, plugin_id: str, purge: bool, dry_run: bool, yes: bool) -> None:
    """Downgrade the plugin's migration branch to base, dropping its tables, and forget it."""
    crm = app.crm()
    permissions.check_actor(crm, app.actor, "plugin.manage")
    plan = crm.purge_plan(plugin_id)
    table(f"{plugin_id}: tables to drop", ["table", "rows"], sorted(plan.items()))
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    if not yes and not click.confirm(f"drop {len(plan)} table(s) with {sum(plan.values())} row(s)?", default=False):
        raise click.Abort()
    crm.remove_plugin(plugin_id, actor=app.actor)  # audited ("purge") by the core
    click.echo(f"removed {plugin_id}: dropped {len(plan)} table(s)")


@click.command()
@click.option("--entity", type=TEXT)
@click.option("--id", "entity_id", type=TEXT)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@pass_app
def audit(app: AppContext, entity: str | None, entity_id: str | None, limit: int, as_json: bool) -> None:
    """The audit log: who changed what, newest first."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [{"at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity, "id": e.entity_id,
                 "before": e.before, "after": e.after} for e in uow.audit.list(entity, entity_id, limit)]
    if as_json:
        emit_json(rows)
    else:
        table("audit log", ["at", "actor", "action", "entity", "id", "after"], [[*list(r.values())[:5], r["after"]] for r in rows])
