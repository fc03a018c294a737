"""`crm init`, `crm db …`, `crm plugins …`, `crm user …`, `crm audit`."""
from __future__ import annotations

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, table, validate
from crmcore.errors import DatabaseError
from crmcore.migrations import runner
from crmcore.migrations.branches import CORE_LABEL
from crmcore.schemas import UserCreate, UserRead


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(db)
    cli.add_command(plugins)
    cli.add_command(user)
    cli.add_command(audit)


@click.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the database (if needed) and bring the core and enabled plugins up to date."""
    crm = app.crm(create=True)
    labels = crm.upgrade()
    click.echo(f"initialised {crm.engine.url.render_as_string(hide_password=True)} ({', '.join(labels)} up to date)")


@click.group(cls=CRMGroup)
def db() -> None:
    """Migrations: upgrade, current, check."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Upgrade the core and every enabled plugin to their latest revisions."""
    crm = app.crm()
    labels = crm.upgrade()
    click.echo(f"up to date: {', '.join(labels)}")


def _migration_rows(app: AppContext) -> list[dict[str, object]]:
    crm = app.crm()
    installed = crm.installed_plugins()
    by_plugin = crm.migration_branches(installed)
    branches = [b for bs in by_plugin.values() for b in bs]
    current = runner.current_heads(crm.engine, branches)
    heads = runner.branch_heads(branches)
    rows = []
    for label in [CORE_LABEL, *(b.label for b in branches)]:
        cur = current.get(label)
        state = "not applied" if cur is None else ("up to date" if cur == heads.get(label) else "behind")
        rows.append({"branch": label, "current": cur, "head": heads.get(label), "state": state})
    for label, rev in current.items():
        if label.startswith("unknown:"):
            rows.append({"branch": "?", "current": rev, "head": None, "state": "revision of an uninstalled plugin"})
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
    """Fail (exit 2) when the database schema does not match the models."""
    crm = app.crm()
    diff = runner.schema_diff(crm.engine, crm.managed_tables())
    if diff:
        for d in diff:
            click.echo(f"  {d}", err=True)
        raise DatabaseError(f"the schema differs from the models in {len(diff)} place(s); run `crm db upgrade`")
    click.echo("schema matches the models")


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
    current = runner.current_heads(crm.engine, branches) if crm.initialised else {}
    heads = runner.branch_heads(branches)
    rows = []
    for pid, info in sorted(installed.items()):
        labels = [b.label for b in by_plugin.get(pid, [])]
        migration = ", ".join(
            f"{lb}: " + ("not applied" if current.get(lb) is None else ("up to date" if current.get(lb) == heads.get(lb) else "behind"))
            for lb in labels
        ) or "-"
        rows.append({
            "id": pid, "version": info.version, "installed": info.source == "entry_point",
            "enabled": pid in enabled or info.source == "code", "loaded": info.loaded and (pid in enabled or info.source == "code"),
            "requires": list(info.requires), "migrations": migration, "error": info.error, "description": info.description,
        })
    if as_json:
        emit_json(rows)
        return
    table("plugins", ["id", "version", "enabled", "requires", "migrations", "error"],
          [[r["id"], r["version"], "yes" if r["enabled"] else "no", ", ".join(r["requires"]) or "-", r["migrations"], r["error"] or ""]
           for r in rows])


@plugins.command("enable")
@click.argument("plugin_id")
@pass_app
def plugins_enable(app: AppContext, plugin_id: str) -> None:
    """Check requirements, run the plugin's migrations and enable it (idempotent)."""
    info = app.crm().enable_plugin(plugin_id)
    click.echo(f"enabled {plugin_id} {info.version or ''}".rstrip())


@plugins.command("disable")
@click.argument("plugin_id")
@pass_app
def plugins_disable(app: AppContext, plugin_id: str) -> None:
    """Stop calling the plugin's hooks and hide its commands; its data stays."""
    app.crm().disable_plugin(plugin_id)
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
    plan = crm.purge_plan(plugin_id)
    table(f"{plugin_id}: tables to drop", ["table", "rows"], sorted(plan.items()))
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    if not yes and not click.confirm(f"drop {len(plan)} table(s) with {sum(plan.values())} row(s)?", default=False):
        raise click.Abort()
    crm.remove_plugin(plugin_id)
    click.echo(f"removed {plugin_id}: dropped {len(plan)} table(s)")


@click.group(cls=CRMGroup)
def user() -> None:
    """Staff users."""


@user.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True)
@click.option("--email")
@click.option("--role", "roles", multiple=True, help="admin, manager, sales, marketing, credit_controller, viewer")
@pass_app
def user_add(app: AppContext, username: str, display_name: str, email: str | None, roles: tuple[str, ...]) -> None:
    """Add a user."""
    data = validate(UserCreate, username=username, display_name=display_name, email=email, roles=list(roles) or None)
    with app.crm().unit_of_work(app.actor) as uow:
        u = uow.users.add(data)
        click.echo(f"added user {u.username} (id {u.id})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def user_list(app: AppContext, as_json: bool) -> None:
    """List users."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        users = [UserRead.model_validate(u).model_dump() for u in uow.users.list()]
    if as_json:
        emit_json(users)
    else:
        table("users", ["id", "username", "name", "roles"], [[u["id"], u["username"], u["display_name"], ", ".join(u["roles"])] for u in users])


@click.command()
@click.option("--entity")
@click.option("--id", "entity_id")
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
        table("audit log", ["at", "actor", "action", "entity", "id", "after"], [list(r.values())[:5] + [r["after"]] for r in rows])
