"""`crm config show`: the effective configuration and where each value came from."""
from __future__ import annotations

import os
from typing import Any

import click

from crmcore import vocabularies
from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, table


def register(cli: click.Group) -> None:
    cli.add_command(config)


@click.group(cls=CRMGroup)
def config() -> None:
    """Show the effective configuration (crm.toml, environment, defaults)."""


def _database_source(app: AppContext) -> str:
    if app.database:
        return "--database"
    if os.environ.get("CRM_DATABASE_URL"):
        return "env CRM_DATABASE_URL"
    from crmcore.db.engine import read_config

    cfg = read_config()
    return "crm.toml" if (isinstance(cfg.get("database"), dict) and cfg["database"].get("url")) or cfg.get("database_url") else "default"


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def config_show(app: AppContext, as_json: bool) -> None:
    """Every loaded plugin's settings, with their source: default < crm.toml [plugin] < env CRM_<PLUGIN>__<KEY>."""
    crm = app.crm()
    rows: list[dict[str, Any]] = [{"plugin": "core", "key": "database", "value": crm.engine.url.render_as_string(hide_password=True),
                                   "source": _database_source(app)}]
    rows += crm.plugin_settings.rows()
    rows += vocabularies.config_rows(crm)  # validates crm.toml [vocabularies] (exit 2 when wrong)
    if as_json:
        emit_json(rows)
        return
    table("configuration", ["plugin", "key", "value", "source"], [[r["plugin"], r["key"], r["value"], r["source"]] for r in rows])
    missing = sorted(set(crm.unavailable))
    if missing:
        click.echo(f"not shown (plugin not loaded): {', '.join(missing)}")
