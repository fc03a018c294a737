"""``CRM``: open a database, assemble the plugins, hand out units of work.

>>> crm = CRM.open("sqlite:///crm.db")
>>> with crm.unit_of_work(actor="alice") as uow:
...     customer = uow.customers.create(CustomerCreate(name="Acme"))
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

import crmcore.models  # noqa: F401 - the core tables must be on the metadata
from crmcore.customfields import FieldRegistry
from crmcore.db.engine import READ_ONLY, create_crm_engine, read_config, resolve_database_url, sqlite_path
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, CRMError, DatabaseError, NotFound
from crmcore.migrations import runner
from crmcore.migrations.branches import CORE_LABEL, MigrationBranch
from crmcore.models import PluginState
from crmcore.plugins import (
    HookRelay,
    PluginInfo,
    blocked_by_env,
    describe,
    installed_entry_points,
    load_entry_point,
)
from crmcore.uow import UnitOfWork


def _plugin_id(obj: Any) -> str:
    pid = getattr(obj, "PLUGIN_ID", None) or getattr(obj, "__name__", None)
    if not pid:
        raise CRMError(f"cannot tell the id of plugin {obj!r}: pass (id, plugin) or set PLUGIN_ID")
    return str(pid).rsplit(".", 1)[-1]


class CRM:
    def __init__(self, url: str, engine: Engine, hooks: HookRelay, config: dict[str, Any],
                 unavailable: dict[str, PluginInfo]) -> None:
        self.url = url
        self.engine = engine
        self.hooks = hooks
        self.config = config
        self.unavailable = unavailable  # enabled in the database but not loaded, with the reason
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.fields = FieldRegistry()
        self.fields.add_from_config(config)
        for owner, definition in hooks.collect("crm_register_custom_fields"):
            self.fields.add(definition, owner=f"plugin {owner!r}")

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        plugins: Iterable[Any] = (),
        entry_points: bool = True,
        create: bool = False,
        config: dict[str, Any] | None = None,
    ) -> "CRM":
        """Open (or with ``create=True`` allow creating) a CRM database.

        :param plugins: plugin modules/objects (or ``(id, obj)`` pairs) registered in code;
            they are always active, whatever the plugin state table says.
        :param entry_points: also load the enabled, installed plugins.
        """
        url = resolve_database_url(url)
        config = read_config() if config is None else config
        path = sqlite_path(url)
        if path is not None and not create and not path.exists():
            raise DatabaseError(f"no CRM database at {path}; run `crm init` first")
        if path is not None and create and not path.parent.exists():
            raise DatabaseError(f"directory {path.parent} does not exist")
        engine = create_crm_engine(url)
        try:
            with engine.connect() as conn:
                has_state = inspect(conn).has_table("plugin_state")
                enabled = set(conn.scalars(select(PluginState.plugin_id).where(PluginState.enabled))) if has_state else set()
        except sa_exc.OperationalError as e:
            engine.dispose()
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            raise DatabaseError(f"cannot open the database {engine.url.render_as_string(hide_password=True)}: {reason}") from None

        hooks = HookRelay()
        for p in plugins:
            pid, obj = p if isinstance(p, tuple) else (_plugin_id(p), p)
            hooks.register(describe(pid, obj, source="code"))
        unavailable: dict[str, PluginInfo] = {}
        if entry_points:
            blocked = blocked_by_env()
            eps = installed_entry_points()
            wanted = [eps[i] for i in sorted(enabled) if i in eps and i not in blocked and not hooks.is_registered(i)]
            loaded = {}
            for ep in wanted:
                info = load_entry_point(ep)
                if info.error:
                    unavailable[info.id] = info
                else:
                    loaded[info.id] = info
            for pid in sorted(enabled - set(eps)):
                unavailable[pid] = PluginInfo(id=pid, error="enabled but not installed")
            for pid in sorted(enabled & blocked):
                unavailable[pid] = PluginInfo(id=pid, error=f"blocked by {'CRM_DISABLE_PLUGINS'}")
            # a plugin whose requirement did not load stays out too (repeat: chains of requirements)
            changed = True
            while changed:
                changed = False
                for pid, info in list(loaded.items()):
                    missing = [r for r in info.requires if r not in loaded and not hooks.is_registered(r)]
                    if missing:
                        info.error = f"requires {', '.join(missing)}, which is not loaded"
                        unavailable[pid] = loaded.pop(pid)
                        changed = True
            for info in loaded.values():
                try:
                    hooks.register(info)
                except CRMError as e:  # a plugin that breaks the contract stays out; the rest go on
                    info.error = str(e)
                    unavailable[info.id] = info
        return cls(url, engine, hooks, config, unavailable)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "CRM":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- units of work ---------------------------------------------------------------------
    @contextmanager
    def unit_of_work(self, actor: str = "system", *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """One transaction: commits at the end, rolls back if anything raised.

        ``read_only=True`` is for reports: on SQLite it does not take the write lock up front,
        and it is rolled back at the end, so nothing it touched is ever written.
        """
        self.require_initialised()
        session: Session = self._sessions()
        uow = UnitOfWork(self, session, actor)
        if read_only:
            try:
                session.connection(execution_options={READ_ONLY: True})
                yield uow
            finally:
                session.rollback()
                session.close()
            return
        try:
            with session.begin():
                yield uow
                if uow.failed is not None:
                    # a hook raised and the caller caught it: what was flushed must not be committed
                    raise uow.failed
        except BaseException:
            uow.discard_after_commit()
            raise
        finally:
            session.close()
        uow.run_after_commit()

    @property
    def initialised(self) -> bool:
        with self.engine.connect() as conn:
            return inspect(conn).has_table("customers")

    def require_initialised(self) -> None:
        if not getattr(self, "_checked_init", False):
            if not self.initialised:
                raise DatabaseError(f"the database {self.engine.url.render_as_string(hide_password=True)} is not initialised; run `crm init`")
            self._checked_init = True

    # -- plugins and migrations --------------------------------------------------------------
    def installed_plugins(self) -> dict[str, PluginInfo]:
        """Every installed plugin, imported (import errors captured), plus the code-registered ones."""
        out: dict[str, PluginInfo] = dict(self.hooks.plugins)
        blocked = blocked_by_env()
        for pid, ep in installed_entry_points().items():
            if pid in out:
                continue
            if pid in blocked:
                out[pid] = PluginInfo(id=pid, error="blocked by CRM_DISABLE_PLUGINS", entry_point=ep)
            else:
                out[pid] = load_entry_point(ep)
        return out

    def enabled_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("plugin_state"):
                return set()
            return set(conn.scalars(select(PluginState.plugin_id).where(PluginState.enabled)))

    def migration_branches(self, plugins: dict[str, PluginInfo] | None = None) -> dict[str, list[MigrationBranch]]:
        """Branches per plugin id, for every loaded plugin given (default: every installed one)."""
        plugins = self.installed_plugins() if plugins is None else plugins
        out: dict[str, list[MigrationBranch]] = {}
        for pid, info in plugins.items():
            if not info.loaded:
                continue
            relay = HookRelay()
            relay.register(PluginInfo(id=pid, module=info.module))
            out[pid] = [b for _, b in relay.collect("crm_register_migrations")]
        return out

    def upgrade(self, plugin_ids: Iterable[str] | None = None) -> list[str]:
        """Upgrade the core and the given plugins' branches (default: every enabled plugin)."""
        installed = self.installed_plugins()
        by_plugin = self.migration_branches(installed)
        ids = sorted(self.enabled_ids() | set(self.hooks.plugins)) if plugin_ids is None else list(plugin_ids)
        labels = [CORE_LABEL] + [b.label for pid in ids for b in by_plugin.get(pid, [])]
        runner.upgrade(self.engine, [b for bs in by_plugin.values() for b in bs], labels)
        self._checked_init = False
        return labels

    def plugin_state(self, plugin_id: str, enabled: bool | None, version: str | None = None) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(PluginState, plugin_id)
            if enabled is None:
                if row is not None:
                    s.delete(row)
                return
            if row is None:
                s.add(PluginState(plugin_id=plugin_id, enabled=enabled, version=version, changed_at=utcnow()))
            else:
                row.enabled, row.changed_at = enabled, utcnow()
                row.version = version or row.version

    def enable_plugin(self, plugin_id: str) -> PluginInfo:
        """Check requirements, run the plugin's migrations, record it as enabled (idempotent)."""
        self.require_initialised()
        installed = self.installed_plugins()
        info = installed.get(plugin_id)
        if info is None:
            known = ", ".join(sorted(installed)) or "none"
            raise NotFound("plugin", f"{plugin_id!r} (installed: {known})")
        if info.error:
            raise CRMError(f"plugin {plugin_id!r} cannot be enabled: {info.error}")
        enabled = self.enabled_ids() | set(self.hooks.plugins)
        missing = [r for r in info.requires if r not in enabled]
        if missing:
            raise Conflict(f"plugin {plugin_id!r} requires {', '.join(missing)}; enable {'it' if len(missing) == 1 else 'them'} first")
        self.upgrade([plugin_id])
        self.plugin_state(plugin_id, True, info.version)
        return info

    def disable_plugin(self, plugin_id: str) -> None:
        self.require_initialised()
        installed = self.installed_plugins()
        enabled = self.enabled_ids()
        if plugin_id not in enabled:
            if plugin_id not in installed:
                raise NotFound("plugin", repr(plugin_id))
            return
        dependants = sorted(p for p in enabled if p != plugin_id and plugin_id in installed.get(p, PluginInfo(id=p)).requires)
        if dependants:
            raise Conflict(f"plugin {plugin_id!r} is required by enabled plugin(s) {', '.join(dependants)}; disable them first")
        self.plugin_state(plugin_id, False)

    def purge_plan(self, plugin_id: str) -> dict[str, int]:
        """Tables the plugin owns and their row counts (what ``remove --purge`` would delete)."""
        from sqlalchemy import func, table

        by_plugin = self.migration_branches()
        if plugin_id not in by_plugin:
            raise NotFound("plugin", repr(plugin_id))
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for b in by_plugin[plugin_id]:
                for t in runner.tables_with_prefix(self.engine, b.table_prefix):
                    out[t] = conn.execute(select(func.count()).select_from(table(t))).scalar_one()
        return out

    def remove_plugin(self, plugin_id: str) -> dict[str, int]:
        """Downgrade the plugin's branches to base and forget it. Refused while it is enabled."""
        self.require_initialised()
        if plugin_id in self.enabled_ids():
            raise Conflict(f"plugin {plugin_id!r} is enabled; disable it first")
        installed = self.installed_plugins()
        dependants = sorted(p for p in self.enabled_ids() if plugin_id in installed.get(p, PluginInfo(id=p)).requires)
        if dependants:
            raise Conflict(f"plugin {plugin_id!r} is required by {', '.join(dependants)}")
        plan = self.purge_plan(plugin_id)
        by_plugin = self.migration_branches(installed)
        all_branches = [b for bs in by_plugin.values() for b in bs]
        for b in by_plugin[plugin_id]:
            runner.downgrade_to_base(self.engine, all_branches, b.label)
        self.plugin_state(plugin_id, None)
        return plan

    def managed_tables(self) -> set[str]:
        """Tables the core and the enabled plugins own (what ``db check`` compares)."""
        from crmcore.db.base import Base

        core = {m.local_table.name for m in Base.registry.mappers if m.class_.__module__.startswith("crmcore.")}
        active = self.enabled_ids() | set(self.hooks.plugins)
        prefixes = tuple(b.table_prefix for pid, bs in self.migration_branches().items() if pid in active for b in bs)
        from crmcore.db.base import metadata

        return core | {t for t in metadata.tables if prefixes and t.startswith(prefixes)}
