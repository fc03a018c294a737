"""crmcore: a small, typed, plugin-extensible CRM core.

Public API for integrators and plugin authors::

    from crmcore import CRM, hookimpl, Veto
"""
from crmcore.app import CRM
from crmcore.customfields import FieldDefinition
from crmcore.errors import (
    Conflict,
    ConfigError,
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
from crmcore.plugins import PluginUnavailable
from crmcore.profile import ProfileSection, ProfileTable, TimelineEntry
from crmcore.settings import PluginSettings
from crmcore.uow import UnitOfWork

__version__ = "0.1.0"

__all__ = [
    "CRM", "Conflict", "ConfigError", "CRMError", "DatabaseError", "FieldDefinition", "InvalidInput",
    "MigrationBranch", "NotFound", "Permission", "PermissionDenied", "PluginError", "PluginUnavailable", "PluginSettings", "ProfileSection", "ProfileTable", "StaleVersion",
    "TimelineEntry", "UnitOfWork", "Veto", "Vetoed", "hookimpl", "hookspec",
]
