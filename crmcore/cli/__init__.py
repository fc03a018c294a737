"""The ``crm`` command. ``build_cli()`` makes the root group; plugin commands are added per
process from the enabled plugins' ``crm_register_commands`` hooks, when first needed.

The core's command modules are imported only when one of their commands runs: ``crm --help``
and ``crm --version`` print from the table below without importing SQLAlchemy, the models or the
plugins (tests/test_platform_cli.py checks the table against the real commands).
"""
from __future__ import annotations

import importlib
import os
from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, default_actor
from crmcore.errors import ConfigError, CRMError
from crmcore.permissions import UnknownActor

# core command -> (module whose register() adds it, short help shown by `crm --help`): the short help
# is the command's get_short_help_str(limit=HELP_LIMIT); tests/test_platform_loading.py checks it
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "account": ("crmcore.cli.accounts", "Customer accounts (ledgers): post entries,..."),
    "audit": ("crmcore.cli.admin", "The audit log: who changed what, newest..."),
    "config": ("crmcore.cli.config", "Show the effective configuration..."),
    "contact": ("crmcore.cli.customers", "People at organization customers and their..."),
    "customer": ("crmcore.cli.customers", "Customers: add, list, show (the 360°..."),
    "db": ("crmcore.cli.admin", "Migrations: upgrade, current, check."),
    "demo": ("crmcore.bulk.cli", "Synthetic data for demos and benchmarks."),
    "export": ("crmcore.bulk.cli", "Export ENTITY in the import column set..."),
    "import": ("crmcore.bulk.cli", "Import ENTITY (customers, contacts,..."),
    "init": ("crmcore.cli.admin", "Create the database (if needed) and bring..."),
    "interaction": ("crmcore.cli.interactions", "Touchpoints: the customer's timeline."),
    "plugins": ("crmcore.cli.admin", "List, enable, disable and remove plugins."),
    "serve": ("crmcore.cli.api", "Run the HTTP API (OpenAPI at..."),
    "user": ("crmcore.cli.admin", "Staff users and roles."),
    "webhooks": ("crmcore.cli.api", "Webhook subscriptions, delivery and dead..."),
}
# every module with a register(cli) adding core commands, in registration order
CORE_MODULES = ("crmcore.cli.admin", "crmcore.cli.customers", "crmcore.cli.interactions", "crmcore.cli.accounts",
                "crmcore.cli.config", "crmcore.bulk.cli", "crmcore.cli.api")
HELP_LIMIT = 45


class RootGroup(CRMGroup):
    """The root ``crm`` group: core commands loaded on demand, plugin commands from the hooks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loaded: set[str] = set()
        self._loading = False
        super().__init__(*args, **kwargs)

    # -- the core commands, imported on first use --------------------------------------------
    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        if not self._loading:
            self._load(CORE_MODULES)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def _load(self, modules: tuple[str, ...]) -> None:
        todo = [m for m in modules if m not in self._loaded]
        if not todo:
            return
        self._loading = True
        try:
            for name in todo:
                self._loaded.add(name)
                importlib.import_module(name).register(self)
        finally:
            self._loading = False

    def _core_command(self, name: str) -> click.Command | None:
        """A core command, importing only its module. The table is complete (tests/
        test_platform_loading.py), so a name not in it (a plugin's) imports no core module."""
        entry = CORE_COMMANDS.get(name)
        if entry is None:
            return self._commands.get(name)  # one added in code (build_cli's caller), if any
        self._load((entry[0],))
        if name in self._commands:
            return self._commands[name]
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """`crm --help` without importing anything: the core's table, and where plugin commands are."""
        rows = [(name, help_) for name, (_, help_) in sorted(CORE_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        with formatter.section("Plugin commands"):
            formatter.write_text("Enabled plugins add their own commands (`crm plugins list` shows the plugins); "
                                 "`crm COMMAND --help` describes any command.")

    # -- state ----------------------------------------------------------------------------------
    def invoke(self, ctx: click.Context) -> Any:
        """Besides CRM errors, an unexpected error (a bug) is one line too; CRM_DEBUG=1 shows the traceback."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:
            if os.environ.get("CRM_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(e).__name__}: {e} (set CRM_DEBUG=1 to see the traceback)", err=True)
            ctx.exit(3)

    def _app(self, ctx: click.Context) -> AppContext:
        if ctx.obj is None:
            ctx.obj = AppContext(database=ctx.params.get("database"), actor=ctx.params.get("user") or default_actor(),
                                 plugins=getattr(self, "crm_plugins", ()))
        return ctx.obj

    # -- plugin commands --------------------------------------------------------------------------
    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        if "crm.plugin_commands" not in ctx.meta:
            commands: dict[str, click.Command] = {}
            try:
                crm = self._app(ctx).crm()
                holder = click.Group()
                crm.hooks.register_commands(holder)
                core = set(CORE_COMMANDS) | set(self._commands)  # the table: no core module imported
                commands = {n: c for n, c in holder.commands.items() if n not in core}
                for clash in sorted(set(holder.commands) & set(core)):
                    click.echo(f"warning: a plugin's command {clash!r} is ignored: it is a core command", err=True)
            except (ConfigError, UnknownActor):
                raise  # bad settings/roles or an unknown --user: the command's one error line, not a warning
            except CRMError as e:
                if ctx.resilient_parsing is False and "database" not in str(e) and "initialised" not in str(e):
                    click.echo(f"warning: plugin commands unavailable: {e}", err=True)
            ctx.meta["crm.plugin_commands"] = commands
        return ctx.meta["crm.plugin_commands"]

    def _not_enabled_hint(self, ctx: click.Context, name: str) -> str | None:
        """When an installed plugin that is not active provides ``name``: what to do about it."""
        try:
            crm = self._app(ctx).crm()
        except CRMError:
            return None
        from crmcore.plugins import installed_entry_points, load_entry_point, plugin_command_names

        eps = installed_entry_points()
        for pid, info in sorted(crm.unavailable.items()):
            if info.blocked and pid in eps:  # blocked: imported here only to name its commands
                if name in plugin_command_names(load_entry_point(eps[pid])):
                    return f"`crm {name}` is provided by plugin {pid!r}, which is blocked by CRM_DISABLE_PLUGINS"
            elif info.loaded and name in plugin_command_names(info):
                return f"`crm {name}` is provided by plugin {pid!r}, which is enabled but cannot be loaded: {info.error}"
        for pid, info in sorted(crm.installed_plugins().items()):
            if pid in crm.hooks.plugins or pid in crm.unavailable:
                continue
            if info.blocked and pid in eps and name in plugin_command_names(load_entry_point(eps[pid])):
                return f"`crm {name}` is provided by plugin {pid!r}, which is blocked by CRM_DISABLE_PLUGINS"
            if info.loaded and name in plugin_command_names(info):
                if info.error:
                    return f"`crm {name}` is provided by plugin {pid!r}, which cannot be enabled: {info.error}"
                return (f"`crm {name}` is provided by plugin {pid!r}, which is installed but not enabled; "
                        f"enable it with `crm plugins enable {pid}`")
        return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, *self._plugin_commands(ctx)])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = self._core_command(name)
        if cmd is not None:
            return cmd
        cmd = self._plugin_commands(ctx).get(name)
        # a plugin command declared by name is imported when asked for by name: `crm customer list`
        # never asks for `credit`, while help, completion and tree walkers get the real group
        from crmcore.plugins import LazyCommand

        if isinstance(cmd, LazyCommand):
            return cmd.resolve()
        if cmd is None and not ctx.resilient_parsing:
            hint = self._not_enabled_hint(ctx, name)
            if hint is not None:
                click.echo(f"error: {hint}", err=True)
                ctx.exit(2)
        return cmd


def build_cli(plugins: tuple[object, ...] = ()) -> click.Group:
    """The root group; ``plugins`` are registered in code (embedding, tests) besides the enabled ones."""
    from crmcore.cli.params import USERNAME  # --user fits the audit log's actor column (R3)

    @click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--database", "-d", metavar="URL", help="Database URL (else CRM_DATABASE_URL, crm.toml, sqlite:///crm.db).")
    @click.option("--user", "-u", metavar="USERNAME", type=USERNAME, help="Who is acting, for the audit log (else CRM_USER).")
    @click.version_option(package_name="crmcore")
    @click.pass_context
    def cli(ctx: click.Context, database: str | None, user: str | None) -> None:
        """crm: a plugin-extensible CRM. Run `crm init`, then `crm customer add`."""
        app = ctx.ensure_object(AppContext)
        app.database = database
        app.actor = user or default_actor()
        app.plugins = getattr(ctx.command, "crm_plugins", ())
        ctx.call_on_close(app.close)

    cli.crm_plugins = tuple(plugins)  # type: ignore[attr-defined]
    return cli


def main(argv: list[str] | None = None) -> Any:
    return build_cli().main(args=argv, prog_name="crm")
