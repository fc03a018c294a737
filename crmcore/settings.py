"""Plugin settings: a pydantic-settings model per plugin, validated once when the CRM opens.

A plugin declares its settings class through ``crm_register_settings(register)``::

    class CreditSettings(PluginSettings):
        check_point: Literal["win", "invoice", "both"] = "invoice"

    @hookimpl
    def crm_register_settings(register):
        register(CreditSettings)

Sources, lowest to highest precedence: the class defaults < the ``[credit]`` table of
``crm.toml`` (or the ``config`` dict given to ``CRM.open``, which stands for crm.toml) < the
environment, ``CRM_CREDIT__CHECK_POINT`` (nested fields: ``CRM_CREDIT__LIMITS__MAX=...``).
pydantic-settings does the environment parsing (types, JSON for lists and tables, nested
keys); this module only binds the plugin's prefix, orders the sources, records where each
value came from, and turns a validation error into one line naming plugin, key and reason.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from crmcore.errors import ConfigError, CRMError, NotFound, PluginError

if TYPE_CHECKING:
    from crmcore.plugin_settings import PluginSettings as PluginSettings
    from crmcore.plugins import HookRelay

S = TypeVar("S", bound="PluginSettings")
ENV_NESTED_DELIMITER = "__"


def __getattr__(name: str) -> Any:
    """``PluginSettings`` (in :mod:`crmcore.plugin_settings`), imported on first use: it brings
    pydantic-settings, which a CRM whose plugins configure nothing never needs."""
    if name == "PluginSettings":
        from crmcore.plugin_settings import PluginSettings

        return PluginSettings
    raise AttributeError(f"module 'crmcore.settings' has no attribute {name!r}")


def env_prefix(plugin_id: str) -> str:
    """``credit`` -> ``CRM_CREDIT__``."""
    return f"CRM_{plugin_id.upper()}{ENV_NESTED_DELIMITER}"


def _env_vars(prefix: str) -> dict[str, str]:
    """Environment variables under the prefix, keyed by the lower-cased rest of the name."""
    return {k[len(prefix):].lower(): k for k in os.environ if k.upper().startswith(prefix)}


@dataclass
class LoadedSettings:
    """A plugin's validated settings and where each top-level value came from."""

    plugin_id: str
    values: PluginSettings
    sources: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        data = self.values.model_dump(mode="json")
        return [{"plugin": self.plugin_id, "key": k, "value": v, "source": self.sources.get(k, "default")} for k, v in data.items()]


def _sources(cls: type[PluginSettings], plugin_id: str, table: Mapping[str, Any], env: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in cls.model_fields:
        found = sorted(v for rest, v in env.items() if rest == name.lower() or rest.startswith(name.lower() + ENV_NESTED_DELIMITER))
        in_toml = name in table
        if found:
            out[name] = "env " + ", ".join(found) + (f" over crm.toml [{plugin_id}]" if in_toml else "")
        elif in_toml:
            out[name] = f"crm.toml [{plugin_id}]"
        else:
            out[name] = "default"
    return out


def load_plugin_settings(plugin_id: str, cls: type[S], config: Mapping[str, Any] | None) -> tuple[S, dict[str, str]]:
    """Validate ``cls`` from defaults < ``config[plugin_id]`` < ``CRM_<PLUGIN>__*``.

    Returns the settings and {field: source}. Any mistake is one :class:`ConfigError` line
    naming the plugin, the key, where the bad value came from and why it is bad.
    """
    table = (config or {}).get(plugin_id, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"crm.toml [{plugin_id}]: must be a table (plugin {plugin_id!r} settings)")
    prefix = env_prefix(plugin_id)
    env = _env_vars(prefix)
    fields = {n.lower() for n in cls.model_fields}
    typos = sorted(v for rest, v in env.items() if rest.split(ENV_NESTED_DELIMITER, 1)[0] not in fields)
    if typos:
        raise ConfigError(f"plugin {plugin_id!r} has no setting for environment variable {typos[0]} "
                          f"(settings: {', '.join(sorted(cls.model_fields)) or 'none'})")
    sources = _sources(cls, plugin_id, table, env)
    try:
        values = cls(_env_prefix=prefix, **dict(table))
    except ValidationError as e:
        raise ConfigError(_one_line(plugin_id, e, sources)) from None
    except _settings_error() as e:  # e.g. a list or table in the environment that is not valid JSON
        cause = f": {e.__cause__}" if e.__cause__ else ""
        raise ConfigError(f"plugin {plugin_id!r} settings: {e}{cause}".splitlines()[0]) from None
    return values, sources


def _settings_error() -> type[Exception]:
    from pydantic_settings import SettingsError  # loaded with the settings class being validated

    return SettingsError


def _one_line(plugin_id: str, e: ValidationError, sources: dict[str, str]) -> str:
    parts = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"]]
        reason = err["msg"].removeprefix("Value error, ")
        if not loc:
            where = next((s for s in sources.values() if s != "default"), "defaults")
            parts.append(f"{where}: {reason}")
            continue
        source = sources.get(loc[0]) or f"crm.toml [{plugin_id}]"
        parts.append(f"{source}: {'.'.join(loc)}: {reason}")
    return f"invalid setting of plugin {plugin_id!r}: " + "; ".join(parts)


class SettingsRegistry:
    """The settings of every loaded plugin that declares some, validated at CRM.open.

    One exception keeps a command from importing what it does not use: a plugin that declares
    its class as a lazy reference (``SETTINGS = "pkg.schemas:Settings"``) and has nothing
    configured (no crm.toml table, no ``CRM_<PLUGIN>__`` variable) keeps its defaults unchecked
    until its settings are first read; anything configured is still validated at open.
    """

    def __init__(self) -> None:
        self._loaded: dict[str, LoadedSettings] = {}
        self._pending: dict[str, tuple[HookRelay, Mapping[str, Any] | None]] = {}

    @classmethod
    def build(cls, hooks: HookRelay, config: Mapping[str, Any] | None) -> SettingsRegistry:
        reg = cls()
        lazy = {pid for pid, info in hooks.plugins.items()
                if isinstance(getattr(info.module, "SETTINGS", None), str) and not _configured(pid, config)}
        for owner, item in hooks.collect("crm_register_settings", lazy_declared=lazy):
            reg._add(owner, item, config)
        reg._pending = {pid: (hooks, config) for pid in sorted(lazy) if pid not in reg._loaded}
        return reg

    def _add(self, owner: str, item: Any, config: Mapping[str, Any] | None) -> None:
        from crmcore.plugin_settings import PluginSettings

        if not (isinstance(item, type) and issubclass(item, PluginSettings)):
            raise PluginError(owner, "crm_register_settings",
                              TypeError(f"register() takes a crmcore.PluginSettings subclass, not {item!r}"))
        if owner in self._loaded:
            raise PluginError(owner, "crm_register_settings", CRMError("settings registered twice"))
        values, sources = load_plugin_settings(owner, item, config)
        self._loaded[owner] = LoadedSettings(owner, values, sources)

    def _resolve(self, plugin_id: str) -> None:
        """Import and validate a lazily declared settings class, the first time it is read."""
        hooks, config = self._pending.pop(plugin_id)
        from crmcore.plugins import declared

        for item in declared(plugin_id, hooks.plugins[plugin_id].module, "crm_register_settings"):
            self._add(plugin_id, item, config)

    @property
    def loaded(self) -> dict[str, LoadedSettings]:
        """{plugin id: its validated settings}, the lazily declared ones resolved."""
        for pid in list(self._pending):
            self._resolve(pid)
        return self._loaded

    def get(self, plugin_id: str) -> PluginSettings:
        if plugin_id in self._pending:
            self._resolve(plugin_id)
        try:
            return self._loaded[plugin_id].values
        except KeyError:
            raise NotFound("settings of plugin", repr(plugin_id)) from None

    def rows(self) -> list[dict[str, Any]]:
        loaded = self.loaded
        return [r for pid in sorted(loaded) for r in loaded[pid].rows()]


def _configured(plugin_id: str, config: Mapping[str, Any] | None) -> bool:
    """Whether crm.toml (``config``) or the environment sets anything for the plugin."""
    return plugin_id in (config or {}) or bool(_env_vars(env_prefix(plugin_id)))


def settings_as_dict(values: BaseModel) -> dict[str, Any]:
    """JSON-ready values (Decimal as string, enums as values), for output."""
    return values.model_dump(mode="json")
