"""Roles a plugin adds as a module attribute: ``ROLES = (Role(name, description, grants), ...)``.

A :class:`Role` is declared as it is built (at import, like :func:`crmcore.permissions.declare_role`),
so the ``PERMISSIONS`` below it in the module may name it; the core checks the ``ROLES``
attribute and declares its items again when it registers the plugin, before it collects any
permission (a plain ``RoleDeclaration`` there serves lazy ``PERMISSIONS = "module:NAME"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmcore.errors import CRMError
from crmcore.permissions import RoleDeclaration, declare_role


@dataclass(frozen=True)
class Role(RoleDeclaration):
    """A role a plugin adds, for its ``ROLES = (Role(...), ...)`` declaration: declared as it is
    built (at import), so the module's ``PERMISSIONS`` below it may already name it."""

    def __post_init__(self) -> None:
        grants = (self.grants,) if isinstance(self.grants, str) else tuple(self.grants)
        object.__setattr__(self, "grants", tuple(dict.fromkeys(grants)))
        declare_role(self.name, self.description, self.grants)


def declared_roles(plugin_id: str, module: Any) -> list[RoleDeclaration]:
    """Check and declare the module's ``ROLES`` (before its permissions are collected); a bad
    declaration is one :class:`CRMError` line naming the plugin."""
    value = getattr(module, "ROLES", None)
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, RoleDeclaration):
            raise CRMError(f"plugin {plugin_id!r}: ROLES must hold crmcore.sdk.Role(name, description, grants) "
                           f"items, got {type(item).__name__} {str(item)[:40]!r}")
        grants = item.grants
        if isinstance(grants, str) or not all(isinstance(g, str) for g in grants):
            raise CRMError(f"plugin {plugin_id!r}: role {item.name!r}: grants must be a tuple of permission names")
        try:
            declare_role(item.name, item.description, grants)
        except ValueError as e:
            raise CRMError(f"plugin {plugin_id!r}: {e}") from None
    return items
