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
from crmcore.hookspecs import hookimpl
from crmcore.migrations.branches import MigrationBranch
from crmcore.profile import ProfileSection
from crmcore.uow import UnitOfWork

__version__ = "0.1.0"

__all__ = [
    "CRM", "Conflict", "ConfigError", "CRMError", "DatabaseError", "FieldDefinition", "InvalidInput",
    "MigrationBranch", "NotFound", "PluginError", "ProfileSection", "StaleVersion", "UnitOfWork", "Veto",
    "Vetoed", "hookimpl",
]
