"""``CRM``: open a database, assemble the plugins, hand out units of work.

>>> crm = CRM.open("sqlite:///crm.db")
>>> with crm.unit_of_work(actor="alice") as uow:
...     customer = uow.customers.create(CustomerCreate(name="Acme"))
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, inspect, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

import crmcore.models  # noqa: F401 - the core tables must be on the metadata
from crmcore.customfields import FieldRegistry
from crmcore.db.engine import READ_ONLY, create_crm_engine, mask_url, read_config, read_only, resolve_database_url, sqlite_path
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, CRMError, DatabaseError, NotFound, PluginError
from crmcore.migrations.branches import CORE_LABEL, MigrationBranch
from crmcore.models import MergeJournal, PluginRecord, PluginState
from crmcore.plugins import (
    BLOCK_ENV,
    HookRelay,
    PluginInfo,
    PluginUnavailable,
    blocked_by_env,
    call_register_hook,
    describe,
    installed_entry_points,
    load_entry_point,
)
from crmcore.uow import UnitOfWork

if TYPE_CHECKING:  # alembic (under runner) is imported by the methods that migrate, not at open
    from crmcore.migrations import runner


def _plugin_id(obj: Any) -> str:
    pid = getattr(obj, "PLUGIN_ID", None) or getattr(obj, "__name__", None)
    if not pid:
        raise CRMError(f"cannot tell the id of plugin {obj!r}: pass (id, plugin) or set PLUGIN_ID")
    return str(pid).rsplit(".", 1)[-1]


def assemble_plugins(plugins: Iterable[Any], enabled: set[str] | None) -> tuple[HookRelay, dict[str, PluginInfo]]:
    """The hook relay of a CRM: the code plugins plus the enabled, installed ones (``enabled``;
    None: code plugins only), and {id: PluginInfo with its error} for those that cannot load.

    A code plugin that does not fit the contract raises (its author passed it); an installed one
    is recorded as unavailable, as if its import had failed, and the others go on.
    """
    code: list[PluginInfo] = []
    for p in plugins:
        pid, obj = p if isinstance(p, tuple) else (_plugin_id(p), p)
        code.append(describe(pid, obj, source="code"))
    code_ids = {i.id for i in code}
    unavailable: dict[str, PluginInfo] = {}
    loaded: dict[str, PluginInfo] = {}
    if enabled is not None:
        blocked = blocked_by_env()
        eps = installed_entry_points()
        for pid in sorted(enabled):
            if pid in code_ids:
                continue
            if pid in blocked:
                unavailable[pid] = PluginInfo(id=pid, error=f"blocked by {BLOCK_ENV}", blocked=True)
            elif pid not in eps:
                unavailable[pid] = PluginInfo(id=pid, error="enabled but not installed")
            else:
                info = load_entry_point(eps[pid])
                (unavailable if info.error else loaded)[pid] = info

    def drop_unmet_requirements() -> None:
        """A plugin whose requirement did not load stays out too (repeat: chains of requirements)."""
        changed = True
        while changed:
            changed = False
            for pid, info in list(loaded.items()):
                missing = [r for r in info.requires if r not in loaded and r not in code_ids]
                if missing:
                    info.error = f"requires {', '.join(missing)}, which is not loaded"
                    unavailable[pid] = loaded.pop(pid)
                    changed = True

    drop_unmet_requirements()
    hooks = HookRelay()
    from crmcore.webhooks import events as webhook_events

    # the core's own event writer (webhooks): always on, not a plugin an admin could switch off
    hooks.pm.register(webhook_events, name="crmcore.webhooks")
    errors = hooks.assemble([*code, *loaded.values()])
    for pid in code_ids & set(errors):
        raise CRMError(errors[pid])
    for pid, error in errors.items():  # a plugin that breaks the contract stays out; the rest go on
        loaded[pid].error = error
        unavailable[pid] = loaded.pop(pid)
    before = set(loaded)
    drop_unmet_requirements()
    for pid in before - set(loaded):
        hooks.unregister(pid)
    return hooks, unavailable


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
        # plugin settings and permissions: validated here, so a bad value fails before any command
        from crmcore.permissions import PermissionRegistry
        from crmcore.settings import SettingsRegistry

        self.permissions = PermissionRegistry.build(hooks, config)
        self.plugin_settings = SettingsRegistry.build(hooks, config)
        # [vocabularies]: its shape, and no word removed that rows still use (no tables yet: none used)
        from crmcore import vocabularies

        try:
            vocabularies.of(self)
        except CRMError:
            engine.dispose()
            raise

    def settings(self, plugin_id: str) -> Any:
        """The validated settings of a loaded plugin (its registered ``PluginSettings`` subclass)."""
        return self.plugin_settings.get(plugin_id)

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
    ) -> CRM:
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
        db_config = section if isinstance(section := config.get("database"), dict) else {}
        engine = create_crm_engine(url, sqlite_synchronous_level=db_config.get("sqlite_synchronous"))
        try:
            with read_only(engine.connect()) as conn:  # never waits for a writer's lock on SQLite
                has_state = inspect(conn).has_table("plugin_state")
                enabled = set(conn.scalars(select(PluginState.plugin_id).where(PluginState.enabled))) if has_state else set()
        except sa_exc.DBAPIError as e:  # unreachable, or not a database at all ("file is not a database", bad options)
            engine.dispose()
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            raise DatabaseError(f"cannot open the database {mask_url(url)}: {reason}") from None

        hooks, unavailable = assemble_plugins(plugins, enabled if entry_points else None)
        return cls(url, engine, hooks, config, unavailable)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CRM:
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
        if not read_only:
            self.check_writable()
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
        with read_only(self.engine.connect()) as conn:
            return inspect(conn).has_table("customers")

    def require_initialised(self) -> None:
        if not getattr(self, "_checked_init", False):
            if not self.initialised:
                raise DatabaseError(f"the database {self.engine.url.render_as_string(hide_password=True)} is not initialised; run `crm init`")
            self._checked_init = True

    # -- plugins and migrations --------------------------------------------------------------
    @property
    def broken(self) -> dict[str, PluginInfo]:
        """Enabled plugins that cannot be loaded (not those blocked on purpose): writes are refused."""
        return {pid: info for pid, info in self.unavailable.items() if not info.blocked}

    def plugin_warnings(self) -> list[str]:
        """One line per enabled plugin that cannot be loaded, for every command to print."""
        return [f"plugin {pid!r} is enabled but cannot be loaded: {info.error}; writes are refused until it is "
                f"fixed, disabled (`crm plugins disable {pid}`) or blocked (CRM_DISABLE_PLUGINS={pid})"
                for pid, info in sorted(self.broken.items())]

    def check_writable(self) -> None:
        """Refuse a write while an enabled plugin is missing: its guards and merge hook would be skipped."""
        if self.broken:
            pid, info = sorted(self.broken.items())[0]
            raise PluginUnavailable(pid, info.error or "not loaded")

    def installed_plugins(self) -> dict[str, PluginInfo]:
        """Every installed plugin, imported (import errors captured) and checked against the hook
        contract (a plugin that does not fit gets ``error`` set, like an import error), plus the
        code-registered ones."""
        out: dict[str, PluginInfo] = dict(self.hooks.plugins)
        blocked = blocked_by_env()
        candidates: list[PluginInfo] = []
        for pid, ep in installed_entry_points().items():
            if pid in out:
                continue
            if pid in blocked:
                out[pid] = PluginInfo(id=pid, error=f"blocked by {BLOCK_ENV}", entry_point=ep, blocked=True)
                continue
            info = load_entry_point(ep)
            out[pid] = info
            if info.loaded:
                candidates.append(info)
        if candidates:  # checked together with the active ones: published hooks count, order does not
            relay = HookRelay()
            active = [PluginInfo(id=i.id, module=i.module) for i in self.hooks.plugins.values()]
            for pid, error in relay.assemble([*active, *candidates]).items():
                out[pid].error = error
        return out

    def enabled_ids(self) -> set[str]:
        with read_only(self.engine.connect()) as conn:
            if not inspect(conn).has_table("plugin_state"):
                return set()
            return set(conn.scalars(select(PluginState.plugin_id).where(PluginState.enabled)))

    def migration_branches(self, plugins: dict[str, PluginInfo] | None = None) -> dict[str, list[MigrationBranch]]:
        """Branches per plugin id, for every imported plugin given (default: every installed one).

        A plugin that does not fit the contract still declares its branch (its revisions are in
        the database); one whose ``crm_register_migrations`` raises is left out, never an error here.
        """
        plugins = self.installed_plugins() if plugins is None else plugins
        out: dict[str, list[MigrationBranch]] = {}
        for pid, info in plugins.items():
            if not info.loaded:
                continue
            try:
                out[pid] = call_register_hook(info, "crm_register_migrations")
            except PluginError as e:
                info.error = info.error or str(e)
        return out

    def remembered(self) -> dict[str, PluginRecord]:
        """What the database keeps of every plugin enabled once (branches, merge mark)."""
        with read_only(self.engine.connect()) as conn:  # a read: never the SQLite write lock
            if not inspect(conn).has_table("plugin_registry"):
                return {}
            with Session(conn) as s:
                return {r.plugin_id: r for r in s.scalars(select(PluginRecord))}

    def remembered_revisions(self) -> runner.Remembered:
        return {rev: list(b.get("depends_on", [])) for r in self.remembered().values()
                for b in r.branches for rev in b.get("revisions", [])}

    def upgrade(self, plugin_ids: Iterable[str] | None = None) -> list[str]:
        """Upgrade the core and the given plugins' branches (default: every enabled, loadable plugin).

        Each branch runs in its own transaction; a plugin's failing migration is reported with the
        plugin named (``DatabaseError``, exit 2) and leaves the core and the other branches as they are.
        """
        from crmcore.migrations import runner

        installed = self.installed_plugins()
        by_plugin = self.migration_branches(installed)
        if plugin_ids is None:
            ids = sorted(p for p in self.enabled_ids() | set(self.hooks.plugins)
                         if p in by_plugin and not installed[p].error)
        else:
            ids = list(plugin_ids)
        branches = [b for bs in by_plugin.values() for b in bs]
        remembered = self.remembered_revisions() if self.initialised else {}
        runner.upgrade(self.engine, branches, [CORE_LABEL], remembered)
        self._checked_init = False
        done = [CORE_LABEL]
        for pid in ids:
            for b in by_plugin.get(pid, []):
                try:
                    runner.upgrade(self.engine, branches, [b.label], remembered)
                except Exception as e:  # noqa: BLE001 - a plugin's migration code may raise anything
                    reason = e.orig if isinstance(e, sa_exc.DBAPIError) and e.orig is not None else e
                    first = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
                    raise DatabaseError(f"migration of plugin {pid!r} (branch {b.label}) failed: {first}; "
                                        f"the core and the other branches are upgraded, {b.label} is unchanged") from None
                done.append(b.label)
            if pid in by_plugin:
                self._remember(pid, branches, by_plugin[pid])
        return done

    def _remember(self, plugin_id: str, branches: list[MigrationBranch], mine: list[MigrationBranch],
                  session: Session | None = None, merge_mark: int | None = None) -> None:
        """Keep the plugin's branch records (and merge mark) in ``plugin_registry``."""
        from crmcore.migrations import runner

        records = [runner.branch_record(branches, b) for b in mine]

        def write(s: Session) -> None:
            row = s.get(PluginRecord, plugin_id)
            if row is None:  # first seen now: the merges before it had nothing of it to move
                mark = merge_mark if merge_mark is not None else (s.scalar(select(func.max(MergeJournal.id))) or 0)
                row = PluginRecord(plugin_id=plugin_id, branches=records, merge_mark=mark)
                s.add(row)
            else:
                row.branches = records
                row.updated_at = utcnow()
                if merge_mark is not None:
                    row.merge_mark = merge_mark

        if session is not None:
            write(session)
            return
        try:
            with Session(self.engine) as s, s.begin():
                write(s)
        except sa_exc.IntegrityError:  # another process recorded it first: now it is an update
            with Session(self.engine) as s, s.begin():
                write(s)

    def plugin_state(self, plugin_id: str, enabled: bool | None, version: str | None = None,
                     session: Session | None = None) -> None:
        def write(s: Session) -> None:
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

        if session is not None:
            write(session)
        else:
            with Session(self.engine) as s, s.begin():
                write(s)

    @contextmanager
    def _admin_unit(self, actor: str) -> Iterator[UnitOfWork]:
        """A writing unit of work for plugin administration: allowed while a plugin is broken
        (disabling or removing it is how the admin fixes that)."""
        session: Session = self._sessions()
        uow = UnitOfWork(self, session, actor)
        try:
            with session.begin():
                yield uow
                if uow.failed is not None:
                    raise uow.failed
        finally:
            session.close()

    def enable_plugin(self, plugin_id: str, actor: str = "system") -> PluginInfo:
        """Check requirements, run the plugin's migrations, replay the merges it missed and record
        it as enabled (idempotent). The replay counts are in ``info.replayed`` ({table: rows})."""
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
        relay = HookRelay()  # the plugin with the active ones, for its merge hook
        active = [PluginInfo(id=i.id, module=i.module) for i in self.hooks.plugins.values() if i.id != plugin_id]
        errors = relay.assemble([*active, PluginInfo(id=plugin_id, module=info.module)])
        if plugin_id in errors:
            raise CRMError(f"plugin {plugin_id!r} cannot be enabled: {errors[plugin_id]}")
        with self._admin_unit(actor) as uow:
            # one enable at a time per plugin (PostgreSQL row lock; SQLite's write lock is already held)
            record = uow.session.scalar(select(PluginRecord).where(PluginRecord.plugin_id == plugin_id).with_for_update())
            mark = record.merge_mark if record is not None else None
            state = uow.session.get(PluginState, plugin_id)
            was_enabled = bool(state is not None and state.enabled)
            last = uow.session.scalar(select(func.max(MergeJournal.id))) or 0
            has_merge_hook = relay.implements(plugin_id, "crm_merge_customers")
            replay = [] if mark is None or not has_merge_hook else list(uow.session.execute(
                select(MergeJournal.id, MergeJournal.source_id, MergeJournal.target_id, MergeJournal.plugins)
                .where(MergeJournal.id > mark).order_by(MergeJournal.id)))
            counts: dict[str, int] = {}
            merges = 0
            for jid, source_id, target_id, seen in replay:
                if plugin_id in (seen or []):
                    continue
                merges += 1
                result = relay.call_plugin(plugin_id, "crm_merge_customers", uow=uow, source_id=source_id, target_id=target_id)
                for table_name, n in (result or {}).items():
                    counts[table_name] = counts.get(table_name, 0) + int(n)
                uow.session.execute(update(MergeJournal).where(MergeJournal.id == jid)
                                    .values(plugins=sorted({*(seen or []), plugin_id})))
            by_plugin = self.migration_branches({plugin_id: info})
            branches = [b for bs in self.migration_branches(installed).values() for b in bs]
            self._remember(plugin_id, branches, by_plugin.get(plugin_id, []), session=uow.session, merge_mark=last)
            self.plugin_state(plugin_id, True, info.version, session=uow.session)
            if not was_enabled or merges:
                uow.audit.record("enable", "plugin", plugin_id, before={"enabled": was_enabled},
                                 after={"enabled": True, "version": info.version, "merges_replayed": merges, **counts})
        info.replayed = {"merges": merges, **counts}
        return info

    def disable_plugin(self, plugin_id: str, actor: str = "system") -> None:
        self.require_initialised()
        installed = self.installed_plugins()
        enabled = self.enabled_ids()
        if plugin_id not in enabled:
            if plugin_id not in installed and plugin_id not in self.remembered():
                raise NotFound("plugin", repr(plugin_id))
            return
        dependants = sorted(p for p in enabled if p != plugin_id and plugin_id in installed.get(p, PluginInfo(id=p)).requires)
        if dependants:
            raise Conflict(f"plugin {plugin_id!r} is required by enabled plugin(s) {', '.join(dependants)}; disable them first")
        with self._admin_unit(actor) as uow:
            self.plugin_state(plugin_id, False, session=uow.session)
            uow.audit.record("disable", "plugin", plugin_id, before={"enabled": True}, after={"enabled": False})

    def purge_plan(self, plugin_id: str) -> dict[str, int]:
        """Tables the plugin owns and their row counts (what ``remove --purge`` would delete);
        for a plugin whose code is gone, from what the database remembers of it."""
        from sqlalchemy import table

        from crmcore.migrations import runner

        by_plugin = self.migration_branches()
        if plugin_id in by_plugin:
            prefixes = [b.table_prefix for b in by_plugin[plugin_id]]
        elif plugin_id in self.remembered():
            prefixes = [b["table_prefix"] for b in self.remembered()[plugin_id].branches]
        else:
            raise NotFound("plugin", repr(plugin_id))
        out: dict[str, int] = {}
        with read_only(self.engine.connect()) as conn:
            for prefix in prefixes:
                for t in runner.tables_with_prefix(conn, prefix):
                    out[t] = conn.execute(select(func.count()).select_from(table(t))).scalar_one()
        return out

    def remove_plugin(self, plugin_id: str, actor: str = "system") -> dict[str, int]:
        """Downgrade the plugin's branches to base and forget it. Refused while it is enabled.

        A plugin whose code is gone (uninstalled while applied) is purged from what the database
        remembers: its tables (by prefix) are dropped and its revisions taken out of alembic_version.
        """
        self.require_initialised()
        if plugin_id in self.enabled_ids():
            raise Conflict(f"plugin {plugin_id!r} is enabled; disable it first (`crm plugins disable {plugin_id}`)")
        installed = self.installed_plugins()
        dependants = sorted(p for p in self.enabled_ids() if plugin_id in installed.get(p, PluginInfo(id=p)).requires)
        if dependants:
            raise Conflict(f"plugin {plugin_id!r} is required by {', '.join(dependants)}")
        from crmcore.migrations import runner

        plan = self.purge_plan(plugin_id)
        by_plugin = self.migration_branches(installed)
        all_branches = [b for bs in by_plugin.values() for b in bs]
        remembered = self.remembered_revisions()
        if plugin_id in by_plugin:
            for b in by_plugin[plugin_id]:
                try:
                    runner.downgrade_to_base(self.engine, all_branches, b.label, remembered)
                except DatabaseError:
                    raise
                except Exception as e:  # noqa: BLE001 - the plugin's downgrade code may raise anything
                    raise DatabaseError(f"removing plugin {plugin_id!r} failed in its downgrade of branch {b.label}: "
                                        f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
        else:
            self._forget(plugin_id, all_branches)
        with self._admin_unit(actor) as uow:
            self.plugin_state(plugin_id, None, session=uow.session)
            record = uow.session.get(PluginRecord, plugin_id)
            if record is not None:
                uow.session.delete(record)
            uow.audit.record("purge", "plugin", plugin_id, before={"tables": plan}, after=None)
        return plan

    def _forget(self, plugin_id: str, branches: list[MigrationBranch]) -> None:
        """Drop the tables and alembic rows of a plugin whose code is gone, from its record."""
        from sqlalchemy import MetaData

        from crmcore.migrations import runner

        record = self.remembered()[plugin_id]
        with self.engine.begin() as conn:
            for b in record.branches:
                names = runner.tables_with_prefix(conn, b["table_prefix"])
                if names:
                    md = MetaData()
                    md.reflect(conn, only=names)
                    md.drop_all(conn)  # in foreign-key order
                runner.forget_revisions(conn, b.get("revisions", []), b.get("depends_on", []), branches)

    def managed_tables(self) -> set[str]:
        """Tables the core and the enabled plugins own (what ``db check`` compares)."""
        from crmcore.db.base import Base

        core = {m.class_.__table__.name for m in Base.registry.mappers if m.class_.__module__.startswith("crmcore.")}
        active = self.enabled_ids() | set(self.hooks.plugins)
        prefixes = tuple(b.table_prefix for pid, bs in self.migration_branches().items() if pid in active for b in bs)
        from crmcore.db.base import metadata

        return core | {t for t in metadata.tables if prefixes and t.startswith(prefixes)}
