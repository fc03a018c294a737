"""crmcore: a small, typed, plugin-extensible CRM core.

Public API for integrators and plugin authors::

    from crmcore import CRM, hookimpl, Veto

Names are imported on first use (PEP 562), so ``crm --help`` and ``import crmcore`` for a
plugin's ``hookimpl`` do not pay for SQLAlchemy, alembic and the models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CRM": "crmcore.app",
    "FieldDefinition": "crmcore.customfields",
    **dict.fromkeys(("Conflict", "ConfigError", "CRMError", "DatabaseError", "InvalidInput", "NotFound", "PluginError", "StaleVersion", "Veto", "Vetoed"), "crmcore.errors"),
    "hookimpl": "crmcore.hookspecs",
    "hookspec": "crmcore.hookspecs",
    "MigrationBranch": "crmcore.migrations.branches",
    "Permission": "crmcore.permissions",
    "PermissionDenied": "crmcore.permissions",
    "PluginUnavailable": "crmcore.plugins",
    "ProfileSection": "crmcore.profile",
    "ProfileTable": "crmcore.profile",
    "TimelineEntry": "crmcore.profile",
    "PluginSettings": "crmcore.plugin_settings",
    "UnitOfWork": "crmcore.uow",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from crmcore.app import CRM
    from crmcore.customfields import FieldDefinition
    from crmcore.errors import (
        ConfigError,
        Conflict,
        CRMError,
        DatabaseError,
        InvalidInput,
        NotFound,
        PluginError,
        StaleVersion,
        Veto,
        Vetoed,
    )
    from crmcore.hookspecs import hookimpl, hookspec
    from crmcore.migrations.branches import MigrationBranch
    from crmcore.permissions import Permission, PermissionDenied
    from crmcore.plugin_settings import PluginSettings
    from crmcore.plugins import PluginUnavailable
    from crmcore.profile import ProfileSection, ProfileTable, TimelineEntry
    from crmcore.uow import UnitOfWork
