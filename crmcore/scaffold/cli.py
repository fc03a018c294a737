"""`crm plugins new NAME` and `crm db revision --plugin ID`: added to the core's groups."""
from __future__ import annotations

from pathlib import Path

import click

from crmcore.cli.context import AppContext, pass_app


def register(cli: click.Group) -> None:
    """Attach the commands to the ``plugins`` and ``db`` groups (registered by crmcore.cli.admin)."""
    plugins, db = cli.commands.get("plugins"), cli.commands.get("db")
    if isinstance(plugins, click.Group):
        plugins.add_command(plugins_new)
    if isinstance(db, click.Group):
        db.add_command(db_revision)


@click.command("new")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="where to create the crm-NAME project directory")
def plugins_new(name: str, directory: Path) -> None:
    """Scaffold a plugin NAME in the standard layout: entry point, settings, a table and its
    migration branch, services, a 360° section and timeline, commands, HTTP routes, a bulk
    entity, a permission, console pages, fixtures and passing tests."""
    from crmcore.scaffold import names, new_plugin

    files = new_plugin(name, directory)
    root = directory / f"crm-{names(name)['dist']}"
    click.echo(f"created plugin {name} in {root} ({len(files)} files); next: cd {root} && pip install -e . && pytest")


@click.command("revision")
@click.option("--plugin", "plugin_id", required=True, help="the plugin whose branch gets the revision")
@click.option("-m", "--message", required=True, help="what the revision changes")
@click.option("--autogenerate", is_flag=True, help="compare the plugin's models with the (up-to-date) database")
@pass_app
def db_revision(app: AppContext, plugin_id: str, message: str, autogenerate: bool) -> None:
    """Write the next revision of a plugin's migration branch (only the plugin's tables)."""
    from crmcore.permissions import check_actor
    from crmcore.scaffold import write_revision

    crm = app.crm()
    check_actor(crm, app.actor, "plugin.manage")
    path = write_revision(crm, plugin_id, message, autogenerate=autogenerate)
    click.echo(f"wrote {path}")
