"""``PluginSettings``, the base class of a plugin's settings (a pydantic-settings model).

Apart from :mod:`crmcore.settings` so that opening a CRM whose plugins declare their settings
lazily (``SETTINGS = "pkg.mod:Settings"``) and configure nothing does not import
pydantic-settings (~70 ms): it comes with the first settings class. ``crmcore.PluginSettings``
and ``crmcore.settings.PluginSettings`` are this class.
"""
from __future__ import annotations

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from crmcore.settings import ENV_NESTED_DELIMITER


class PluginSettings(BaseSettings):
    """Base class of a plugin's settings (a pydantic-settings ``BaseSettings``).

    Constructed directly (``CreditSettings(check_point="win")``) it reads only its arguments,
    never the environment, so tests and code get exactly what they pass; the CRM loads it
    with :func:`load_plugin_settings`, which binds ``CRM_<PLUGIN>__`` and crm.toml.
    """

    model_config = SettingsConfigDict(extra="forbid", env_nested_delimiter=ENV_NESTED_DELIMITER,
                                      case_sensitive=False, env_prefix="", env_file=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats crm.toml (passed as init values); no dotenv or secrets files.
        if getattr(env_settings, "env_prefix", ""):
            return (env_settings, init_settings)
        return (init_settings,)
