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
from typing import Any

import pluggy

from crmcore import hookspecs
from crmcore.errors import CRMError, PluginError, Veto, Vetoed

ENTRY_POINT_GROUP = "crmcore.plugins"
BLOCK_ENV = "CRM_DISABLE_PLUGINS"


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
        return PluginInfo(id=ep.name, version=version, error=f"{type(e).__name__}: {e}{where}", entry_point=ep)
    info = describe(ep.name, obj, version, source="entry_point")
    info.entry_point = ep
    return info


class HookRelay:
    """Typed front of the pluggy manager: one method per hook, errors attributed to a plugin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}

    # -- registration ---------------------------------------------------------------------
    def register(self, info: PluginInfo) -> None:
        if info.module is None:
            raise ValueError(f"plugin {info.id!r} is not loaded")
        if info.id in self.plugins:
            raise CRMError(f"plugin {info.id!r} is registered twice")
        try:
            self.pm.register(info.module, name=info.id)
        except pluggy.PluginValidationError as e:
            raise CRMError(f"plugin {info.id!r} does not fit the hook contract: {e}") from None
        unknown = sorted(c.name for c in (self.pm.get_hookcallers(info.module) or []) if not c.has_spec())
        if unknown:  # a misspelt hook would otherwise never be called, silently
            self.pm.unregister(info.module)
            raise CRMError(f"plugin {info.id!r} implements unknown hook(s) {', '.join(unknown)}; see docs/hooks.md")
        self.plugins[info.id] = info

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

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
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
        out: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
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

    def _impls(self, hook_name: str) -> list[Any]:
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]

    # -- the typed surface ----------------------------------------------------------------
    def customer_created(self, uow: Any, customer: Any) -> None:
        self.call("crm_customer_created", uow=uow, customer=customer)

    def customer_updated(self, uow: Any, customer: Any, changes: dict[str, tuple[Any, Any]]) -> None:
        self.call("crm_customer_updated", uow=uow, customer=customer, changes=changes)

    def customer_archived(self, uow: Any, customer: Any) -> None:
        self.call("crm_customer_archived", uow=uow, customer=customer)

    def interaction_logged(self, uow: Any, interaction: Any) -> None:
        self.call("crm_interaction_logged", uow=uow, interaction=interaction)

    def transaction_posted(self, uow: Any, transaction: Any) -> None:
        self.call("crm_transaction_posted", uow=uow, transaction=transaction)

    def customers_batch(self, uow: Any, created_ids: Sequence[int], updated_ids: Sequence[int]) -> None:
        self.call("crm_customers_batch", uow=uow, created_ids=created_ids, updated_ids=updated_ids)

    def interactions_batch(self, uow: Any, interaction_ids: Sequence[int]) -> None:
        self.call("crm_interactions_batch", uow=uow, interaction_ids=interaction_ids)

    def transactions_batch(self, uow: Any, transaction_ids: Sequence[int]) -> None:
        self.call("crm_transactions_batch", uow=uow, transaction_ids=transaction_ids)

    def before_transaction_post(self, uow: Any, account: Any, entry: Any) -> None:
        self.call("crm_before_transaction_post", uow=uow, account=account, entry=entry)

    def before_transactions_batch(self, uow: Any, entries: Sequence[tuple[Any, Any]]) -> dict[int, str]:
        refused: dict[int, str] = {}
        for plugin, result in self.call_with_names("crm_before_transactions_batch", uow=uow, entries=entries):
            for index, reason in result.items():
                refused.setdefault(int(index), f"refused by plugin {plugin!r}: {reason}")
        return refused

    def merge_customers(self, uow: Any, source_id: int, target_id: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _plugin, result in self.call_with_names("crm_merge_customers", uow=uow, source_id=source_id, target_id=target_id):
            for table, n in result.items():
                counts[table] = counts.get(table, 0) + int(n)
        return counts

    def profile_sections(self, uow: Any, customer: Any) -> list[tuple[str, Any]]:
        return self.call_with_names("crm_customer_profile_sections", uow=uow, customer=customer)

    def register_commands(self, cli: Any) -> None:
        self.call("crm_register_commands", cli=cli)

    def collect(self, hook_name: str) -> list[tuple[str, Any]]:
        """Run a ``register``-style hook; returns (plugin id, registered item) pairs."""
        items: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
            def register(item: Any, _name: str = impl.plugin_name) -> None:
                items.append((_name, item))
            try:
                impl.function(register=register)
            except Exception as e:
                raise PluginError(impl.plugin_name, hook_name, e) from e
        return items
