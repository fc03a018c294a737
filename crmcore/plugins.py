"""Plugin discovery, enable/disable state and hook dispatch.

Plugins are found through the ``crmcore.plugins`` entry point group; the entry point's name is
the plugin id and its object is the module (or object) holding the hook implementations. A
module may declare ``requires = ("other_id",)``. Enabled state lives in the ``plugin_state``
table; ``CRM_DISABLE_PLUGINS=a,b`` blocks plugins in an emergency. A disabled or blocked plugin
is never imported by normal commands (only ``crm plugins list`` / ``crm db`` import every
installed plugin, to show its requirements and find its migrations). A plugin that fails to
import is recorded with its error and never stops the core or the other plugins.
"""
from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click
import pluggy

from crmcore import hookspecs
from crmcore.errors import CRMError, PluginError, Veto, Vetoed
from crmcore.plugin_roles import declared_roles

if TYPE_CHECKING:  # the hookspecs' own types, for the relay's typed surface
    from crmcore.bulk.ledger_import import AccountRef
    from crmcore.models import Account, Customer, Interaction, Transaction
    from crmcore.profile import ProfileSection, TimelineEntry
    from crmcore.schemas import TransactionCreate
    from crmcore.uow import UnitOfWork

ENTRY_POINT_GROUP = "crmcore.plugins"
BLOCK_ENV = "CRM_DISABLE_PLUGINS"


class PluginUnavailable(CRMError):
    """An enabled plugin cannot be loaded, so writing is refused: the write would skip its hooks
    (a guard such as a credit hold, or its merge hook). Reads go on."""

    exit_code = 2

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(
            f"plugin {plugin!r} is enabled but cannot be loaded ({reason}); nothing was written: fix it, "
            f"or `crm plugins disable {plugin}`, or block it with CRM_DISABLE_PLUGINS={plugin}"
        )
        self.plugin = plugin
        self.reason = reason


@dataclass
class PluginInfo:
    """What the core knows about one plugin, whether or not it is loaded."""

    id: str
    version: str | None = None
    requires: tuple[str, ...] = ()
    description: str = ""
    module: Any = None
    error: str | None = None
    source: str = "entry_point"  # or "code"
    blocked: bool = False  # kept out on purpose by CRM_DISABLE_PLUGINS (writes go on without it)
    replayed: dict[str, int] = field(default_factory=dict)  # set by enable: merges replayed, rows per table
    entry_point: EntryPoint | None = field(default=None, repr=False)

    @property
    def loaded(self) -> bool:
        return self.module is not None


def installed_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def blocked_by_env() -> set[str]:
    return {p.strip() for p in os.environ.get(BLOCK_ENV, "").split(",") if p.strip()}


def describe(plugin_id: str, obj: Any, version: str | None = None, source: str = "code") -> PluginInfo:
    requires = tuple(getattr(obj, "requires", ()) or ())
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return PluginInfo(
        id=plugin_id,
        version=version or getattr(obj, "__version__", None),
        requires=requires,
        description=doc[0] if doc else "",
        module=obj,
        source=source,
    )


def load_entry_point(ep: EntryPoint) -> PluginInfo:
    """Import one plugin; an import error is captured, never raised."""
    version = ep.dist.version if ep.dist is not None else None
    try:
        obj = ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plugin must not stop the core
        last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        return PluginInfo(id=ep.name, version=version, error=f"{type(e).__name__}: {one_line(e)}{where}", entry_point=ep)
    info = describe(ep.name, obj, version, source="entry_point")
    info.entry_point = ep
    return info


def one_line(error: BaseException) -> str:
    """pluggy's multi-line validation messages as one line (the CLI prints one line per error)."""
    return "; ".join(part.strip() for part in str(error).splitlines() if part.strip())


def call_register_hook(info: PluginInfo, hook_name: str) -> list[Any]:
    """Call one plugin's ``register``-style hook directly, without the contract check (used for
    migrations, which must be found even for a plugin that does not fit the contract).

    Asking for migrations imports the deferred models first (``crmcore.db.defer_models``): whoever
    asks compares or creates the schema, and every plugin table must then be on the metadata.
    """
    if hook_name == "crm_register_migrations":
        from crmcore.db.base import import_deferred_models

        import_deferred_models()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    items: list[Any] = []
    if pm.parse_hookimpl_opts(info.module, hook_name) is not None:
        try:
            getattr(info.module, hook_name)(register=items.append)
        except Exception as e:
            raise PluginError(info.id, hook_name, e) from e
    seen = {id(i) for i in items}
    return items + [i for i in declared(info.id, info.module, hook_name) if id(i) not in seen]


#: register-style hooks a plugin may replace by a module attribute of the same content
DECLARED: dict[str, str] = {
    "crm_register_permissions": "PERMISSIONS",
    "crm_register_settings": "SETTINGS",
    "crm_register_bulk_entities": "BULK_ENTITIES",
    "crm_register_custom_fields": "CUSTOM_FIELDS",
    "crm_register_migrations": "MIGRATIONS",
    "crm_register_commands": "COMMANDS",
    "crm_register_routes": "ROUTES",
}


def declared(plugin_id: str, module: Any, hook_name: str) -> list[Any]:
    """What a plugin module declares for ``hook_name`` as an attribute (``PERMISSIONS = (...)``).

    One item or a sequence; a ``"package.module:NAME"`` string is imported and a function (not a
    class) is called without arguments when the core first asks, so a declaration stays lazy
    (``COMMANDS = "crm_x.cli:group"`` imports the CLI module only for a ``crm`` command). This is the glue every plugin used to write by hand as a ``register`` hook.
    """
    attr = DECLARED.get(hook_name)
    value = getattr(module, attr, None) if attr else None
    if value is None:
        return []
    if isinstance(value, str):  # "package.module:NAME", imported when first asked for
        value = _import_reference(plugin_id, hook_name, value)
    if callable(value) and not isinstance(value, type) and hook_name not in ("crm_register_routes", "crm_register_commands"):
        try:
            value = value()
        except Exception as e:
            raise PluginError(plugin_id, hook_name, e) from e
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _import_reference(plugin_id: str, hook_name: str, reference: str) -> Any:
    import importlib

    module_name, _, name = reference.partition(":")
    try:
        return getattr(importlib.import_module(module_name), name)
    except Exception as e:
        raise PluginError(plugin_id, hook_name, e) from e


def plugin_command_names(info: PluginInfo) -> set[str]:
    """The command names a plugin's ``crm_register_commands`` adds (to say which plugin provides
    a command that is not available); an error there means none."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    if info.module is None:
        return set()
    holder = click.Group()
    try:
        if pm.parse_hookimpl_opts(info.module, "crm_register_commands") is not None:
            info.module.crm_register_commands(cli=holder)
        add_declared_commands(info.id, info.module, holder)
    except Exception:  # noqa: BLE001 - only a hint is at stake
        return set()
    return set(holder.commands)


def add_declared_commands(plugin_id: str, module: Any, cli: Any) -> None:
    """Add a module's ``COMMANDS`` (click commands, or a function returning them) to ``cli``.

    ``COMMANDS = {"name": "package.module:group"}`` names the commands without importing them: each
    is a :class:`LazyCommand` until it runs or its help is shown, so ``crm value ...`` does not
    import the other plugins' command modules (and what they import).
    """
    for item in declared(plugin_id, module, "crm_register_commands"):
        if isinstance(item, dict):
            for name, reference in item.items():
                if name not in cli.commands:
                    cli.add_command(LazyCommand(name, reference, plugin_id))
            continue
        commands = item() if callable(item) and not hasattr(item, "invoke") else item
        for command in commands if isinstance(commands, (list, tuple)) else [commands]:
            if command.name not in cli.commands:
                cli.add_command(command)


class LazyCommand(click.Command):
    """A plugin's command known by its name until it is used: the first use imports
    ``"package.module:NAME"`` (a click command, or a function returning one) and hands over to it."""

    def __init__(self, name: str, reference: str, plugin_id: str) -> None:
        super().__init__(name)
        del self.callback  # looked up on the real command (see __getattr__), e.g. by plugin_layout_problems
        self.reference = reference
        self.plugin_id = plugin_id
        self._command: click.Command | None = None

    def resolve(self) -> click.Command:
        """The real command (imported once); a failing import is the plugin's error, one line."""
        if self._command is None:
            obj = _import_reference(self.plugin_id, "crm_register_commands", self.reference)
            if callable(obj) and not isinstance(obj, click.Command):
                try:
                    obj = obj()
                except Exception as e:
                    raise PluginError(self.plugin_id, "crm_register_commands", e) from e
            if not isinstance(obj, click.Command):
                raise PluginError(self.plugin_id, "crm_register_commands",
                                  TypeError(f"{self.reference} is not a click command: {obj!r}"))
            self._command = obj
        return self._command

    # the parsed context belongs to the real command, so running it never comes back here
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self.resolve().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.resolve().invoke(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.resolve().get_short_help_str(limit)

    def get_help(self, ctx: click.Context) -> str:
        return self.resolve().get_help(ctx)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self.resolve().get_params(ctx)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        return self.resolve().shell_complete(ctx, incomplete)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self.resolve().to_info_dict(ctx)

    def __getattr__(self, name: str) -> Any:
        """Anything else (``callback``, ``commands`` of a group, ...) is the real command's."""
        if name.startswith("_") or name in ("reference", "plugin_id"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)


def add_declared_routes(plugin_id: str, module: Any, router: Any) -> None:
    """Include a module's ``ROUTES``: an APIRouter, or a function ``register(router)``."""
    for item in declared(plugin_id, module, "crm_register_routes"):
        if callable(item) and not hasattr(item, "routes"):
            item(router)
        else:
            router.include_router(item)


class HookRelay:
    """Typed front of the pluggy manager: one method per hook, errors attributed to a plugin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.published: dict[str, str] = {}  # hook name -> id of the plugin that published its spec

    # -- registration ---------------------------------------------------------------------
    def register(self, info: PluginInfo) -> None:
        """Register one plugin; a plugin that does not fit the contract raises :class:`CRMError`."""
        errors = self.assemble([info])
        if errors:
            raise CRMError(errors[info.id])

    def assemble(self, infos: Sequence[PluginInfo]) -> dict[str, str]:
        """Register several plugins at once; returns {plugin id: why it was refused}.

        Three passes, so the order of the plugins does not matter: every plugin's published hook
        specifications (``crm_add_hookspecs``) first, then the implementations (pluggy checks
        their arguments against the specs), then the check that every implemented hook has a
        spec unless the implementation is marked ``optionalhook=True``.
        """
        errors: dict[str, str] = {}
        pending: list[PluginInfo] = []
        for info in infos:
            if info.module is None:
                raise ValueError(f"plugin {info.id!r} is not loaded")
            if info.id in self.plugins or any(p.id == info.id for p in pending):
                errors[info.id] = f"plugin {info.id!r} is registered twice"
                continue
            try:
                declared_roles(info.id, info.module)  # before any permission is collected: they may name them
                self._add_published_specs(info)
            except CRMError as e:
                errors[info.id] = str(e)
                continue
            pending.append(info)
        registered: list[PluginInfo] = []
        for info in pending:
            try:
                self.pm.register(info.module, name=info.id)
            except (pluggy.PluginValidationError, ValueError) as e:
                errors[info.id] = f"plugin {info.id!r} does not fit the hook contract: {one_line(e)}"
                continue
            registered.append(info)
        for info in registered:
            unknown = self._unknown_hooks(info.module)
            if unknown:  # a misspelt hook would otherwise never be called, silently
                self.pm.unregister(info.module)
                errors[info.id] = (f"plugin {info.id!r} implements unknown hook(s) {', '.join(unknown)}; "
                                   "see docs/hooks.md (mark a hook of another plugin @hookimpl(optionalhook=True))")
                continue
            self.plugins[info.id] = info
        return errors

    def _add_published_specs(self, info: PluginInfo) -> None:
        """Call the plugin's ``crm_add_hookspecs`` and add what it registers (checked first)."""
        opts = self.pm.parse_hookimpl_opts(info.module, "crm_add_hookspecs")
        if opts is None:
            return
        holders: list[Any] = []
        try:
            info.module.crm_add_hookspecs(register=holders.append)
        except Exception as e:  # noqa: BLE001 - attributed to the plugin, like an import error
            raise CRMError(f"plugin {info.id!r} failed in hook crm_add_hookspecs: {type(e).__name__}: {e}") from None
        for holder in holders:
            names = [n for n in dir(holder) if self.pm.parse_hookspec_opts(holder, n) is not None]
            if not names:
                raise CRMError(f"plugin {info.id!r} published {holder!r}, which holds no @crmcore.hookspec function")
            for name in names:
                if name.startswith("crm_"):
                    raise CRMError(f"plugin {info.id!r} cannot publish hook {name}: the crm_ prefix is the core's")
                caller = getattr(self.pm.hook, name, None)
                if caller is not None and caller.has_spec():
                    owner = self.published.get(name, "another plugin")
                    raise CRMError(f"plugin {info.id!r} publishes hook {name}, already published by {owner!r}")
        for holder in holders:
            try:
                self.pm.add_hookspecs(holder)
            except (pluggy.PluginValidationError, ValueError) as e:
                raise CRMError(f"plugin {info.id!r} publishes hooks that do not fit: {one_line(e)}") from None
            for name in dir(holder):
                if self.pm.parse_hookspec_opts(holder, name) is not None:
                    self.published[name] = info.id

    def _unknown_hooks(self, module: Any) -> list[str]:
        out = []
        for caller in self.pm.get_hookcallers(module) or []:
            if caller.has_spec():
                continue
            mine = [i for i in caller.get_hookimpls() if i.plugin is module]
            if any(not i.optionalhook for i in mine):
                out.append(caller.name)
        return sorted(out)

    def unregister(self, plugin_id: str) -> None:
        """Take a registered plugin out again (its published specs stay: pluggy cannot remove them)."""
        info = self.plugins.pop(plugin_id)
        self.pm.unregister(info.module)

    def is_registered(self, plugin_id: str) -> bool:
        return plugin_id in self.plugins

    # -- dispatch -------------------------------------------------------------------------
    def _blame(self, hook_name: str, tb: TracebackType | None) -> str:
        """The plugin whose implementation appears first in the traceback."""
        codes = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                codes[code] = impl.plugin_name
        while tb is not None:
            name = codes.get(tb.tb_frame.f_code)
            if name is not None:
                return name
            tb = tb.tb_next
        return "unknown"

    @staticmethod
    def _poison(kwargs: dict[str, Any], error: BaseException) -> BaseException:
        """Mark the unit of work as failed, so it rolls back even if the caller swallows the error."""
        uow = kwargs.get("uow")
        if uow is not None and getattr(uow, "failed", None) is None:
            uow.failed = error
        return error

    def has_spec(self, hook_name: str) -> bool:
        """Whether ``hook_name`` is a core hook or one published by a loaded plugin."""
        caller = getattr(self.pm.hook, hook_name, None)
        return caller is not None and caller.has_spec()

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation; ``[]`` when nobody implements it or its publisher is not loaded."""
        if not self.has_spec(hook_name):
            return []
        hook = getattr(self.pm.hook, hook_name)
        if not hook.get_hookimpls():
            return []
        try:
            return hook(**kwargs)
        except (PluginError, Vetoed) as e:
            raise self._poison(kwargs, e) from None
        except Veto as e:
            raise self._poison(kwargs, Vetoed(self._blame(hook_name, e.__traceback__), hook_name, e.reason)) from None
        except Exception as e:
            raise self._poison(kwargs, PluginError(self._blame(hook_name, e.__traceback__), hook_name, e)) from e

    def call_with_names(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like :meth:`call`, but pairs every non-None result with its plugin id.

        Used where the core must say which plugin answered (guards, merge counts, profile
        sections); it calls the implementations in pluggy's order, without wrappers.
        """
        only = kwargs.pop("_only", None)
        out: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
            if only is not None and impl.plugin_name != only:
                continue
            try:
                res = impl.function(**{a: kwargs[a] for a in impl.argnames})
            except (PluginError, Vetoed) as e:
                raise self._poison(kwargs, e) from None
            except Veto as e:
                raise self._poison(kwargs, Vetoed(impl.plugin_name, hook_name, e.reason)) from None
            except Exception as e:
                raise self._poison(kwargs, PluginError(impl.plugin_name, hook_name, e)) from e
            if res is not None:
                out.append((impl.plugin_name, res))
        return out

    def implements(self, plugin_id: str, hook_name: str) -> bool:
        """Whether the registered plugin ``plugin_id`` implements ``hook_name``."""
        return any(i.plugin_name == plugin_id for i in self._impls(hook_name))

    def call_plugin(self, plugin_id: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook (None if it has none); errors attributed."""
        for _name, result in self.call_with_names(hook_name, _only=plugin_id, **kwargs):
            return result
        return None

    def _impls(self, hook_name: str) -> list[Any]:
        if not self.has_spec(hook_name):
            return []
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]

    # -- the typed surface ----------------------------------------------------------------
    # One method per hook the core fires, with the hookspec's own parameter names and types
    # (tests/test_hooks.py checks they match), so mypy catches a wrong call at the call site.
    def customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
        self.call("crm_customer_created", uow=uow, customer=customer)

    def customer_updated(self, uow: UnitOfWork, customer: Customer, changes: dict[str, tuple[Any, Any]]) -> None:
        self.call("crm_customer_updated", uow=uow, customer=customer, changes=changes)

    def customer_archived(self, uow: UnitOfWork, customer: Customer) -> None:
        self.call("crm_customer_archived", uow=uow, customer=customer)

    def interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
        self.call("crm_interaction_logged", uow=uow, interaction=interaction)

    def transaction_posted(self, uow: UnitOfWork, transaction: Transaction) -> None:
        self.call("crm_transaction_posted", uow=uow, transaction=transaction)

    def customers_batch(self, uow: UnitOfWork, created_ids: Sequence[int], updated_ids: Sequence[int]) -> None:
        self.call("crm_customers_batch", uow=uow, created_ids=created_ids, updated_ids=updated_ids)

    def interactions_batch(self, uow: UnitOfWork, interaction_ids: Sequence[int]) -> None:
        self.call("crm_interactions_batch", uow=uow, interaction_ids=interaction_ids)

    def transactions_batch(self, uow: UnitOfWork, transaction_ids: Sequence[int]) -> None:
        self.call("crm_transactions_batch", uow=uow, transaction_ids=transaction_ids)

    def before_transaction_post(self, uow: UnitOfWork, account: Account, entry: TransactionCreate) -> None:
        self.call("crm_before_transaction_post", uow=uow, account=account, entry=entry)

    def before_transactions_batch(self, uow: UnitOfWork, entries: Sequence[tuple[AccountRef, TransactionCreate]]) -> dict[int, str]:
        """{index: reason} of the entries some guard refused, the first plugin's reason kept."""
        refused: dict[int, str] = {}
        for plugin, result in self.call_with_names("crm_before_transactions_batch", uow=uow, entries=entries):
            for index, reason in result.items():
                refused.setdefault(int(index), f"refused by plugin {plugin!r}: {reason}")
        return refused

    def before_customer_archive(self, uow: UnitOfWork, customer: Customer) -> None:
        self.call("crm_before_customer_archive", uow=uow, customer=customer)

    def before_customer_merge(self, uow: UnitOfWork, source: Customer, target: Customer) -> None:
        self.call("crm_before_customer_merge", uow=uow, source=source, target=target)

    def interaction_updated(self, uow: UnitOfWork, interaction: Interaction, changes: dict[str, tuple[Any, Any]]) -> None:
        self.call("crm_interaction_updated", uow=uow, interaction=interaction, changes=changes)

    def interactions_updated_batch(self, uow: UnitOfWork, interaction_ids: Sequence[int]) -> None:
        self.call("crm_interactions_updated_batch", uow=uow, interaction_ids=interaction_ids)

    def customer_timeline(self, uow: UnitOfWork, customer: Customer) -> list[tuple[str, TimelineEntry]]:
        """(plugin id, entry) pairs from every plugin's ``crm_customer_timeline``."""
        from crmcore.profile import TimelineEntry

        out: list[tuple[str, TimelineEntry]] = []
        for plugin, entries in self.call_with_names("crm_customer_timeline", uow=uow, customer=customer):
            entries = [entries] if isinstance(entries, TimelineEntry) else entries
            bad = [e for e in entries if not isinstance(e, TimelineEntry)] if isinstance(entries, (list, tuple)) else [entries]
            if bad:
                raise PluginError(plugin, "crm_customer_timeline",
                                  TypeError(f"expected a list of TimelineEntry, got {type(bad[0]).__name__}"))
            out.extend((plugin, e) for e in entries)
        return out

    def merge_customers(self, uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
        """{table: rows re-pointed}, summed over the plugins."""
        counts: dict[str, int] = {}
        for _plugin, result in self.call_with_names("crm_merge_customers", uow=uow, source_id=source_id, target_id=target_id):
            for table, n in result.items():
                counts[table] = counts.get(table, 0) + int(n)
        return counts

    def profile_sections(self, uow: UnitOfWork, customer: Customer) -> list[tuple[str, ProfileSection]]:
        return self.call_with_names("crm_customer_profile_sections", uow=uow, customer=customer)

    def register_commands(self, cli: Any) -> None:
        """Every plugin's commands: its ``crm_register_commands`` hook and its ``COMMANDS``."""
        self.call("crm_register_commands", cli=cli)
        for pid, info in self.plugins.items():
            try:
                add_declared_commands(pid, info.module, cli)
            except PluginError:
                raise
            except Exception as e:
                raise PluginError(pid, "crm_register_commands", e) from e

    def register_routes(self, router: Any) -> None:
        """Every plugin's HTTP routes: its ``crm_register_routes`` hook and its ``ROUTES``."""
        self.call("crm_register_routes", router=router)
        for pid, info in self.plugins.items():
            try:
                add_declared_routes(pid, info.module, router)
            except PluginError:
                raise
            except Exception as e:
                raise PluginError(pid, "crm_register_routes", e) from e

    def collect(self, hook_name: str, lazy_declared: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, Any]]:
        """Run a ``register``-style hook; returns (plugin id, registered item) pairs.

        ``lazy_declared``: plugins whose declaration (the module attribute) is left out, for the
        caller to resolve when first needed (their hook implementations still run).
        """
        items: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
            def register(item: Any, _name: str = impl.plugin_name) -> None:
                items.append((_name, item))
            try:
                impl.function(register=register)
            except Exception as e:
                raise PluginError(impl.plugin_name, hook_name, e) from e
        seen = {id(item) for _, item in items}  # a plugin that both declares and registers: once
        for pid, info in self.plugins.items():
            if pid not in lazy_declared:
                items.extend((pid, item) for item in declared(pid, info.module, hook_name) if id(item) not in seen)
        return items
