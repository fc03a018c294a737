"""Named permissions, the roles that hold them, and the check a writing service makes.

A permission is a dotted string (``customer.write``, ``credit.release``). The core declares its
own in :data:`CORE_PERMISSIONS`; a plugin declares its own through the
``crm_register_permissions(register)`` hook. Each permission names the roles that hold it by
default; ``admin`` holds every permission. ``crm.toml`` may change a role's set::

    [roles.sales]
    grant = ["account.post"]          # add to the defaults
    revoke = ["customer.archive"]     # take away from the defaults
    # permissions = [...]             # or replace the set entirely

A plugin may add roles of its own with :func:`declare_role` (at import, before its permissions
name them); a declared role exists in a CRM while a loaded plugin's permission names it, holds
the core permissions its declaration lists, and is then accepted by ``crm user add --role``.

Enforcement (in :class:`crmcore.uow.UnitOfWork`): with no users in the database the CRM runs in
single-user mode and every permission is granted; once a user exists, the actor must be an
existing, active user and holds the union of its roles' permissions.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmcore.enums import Role
from crmcore.errors import ConfigError, CRMError, PluginError

if TYPE_CHECKING:
    from crmcore.plugins import HookRelay

ADMIN = Role.ADMIN.value
ROLES: tuple[str, ...] = tuple(r.value for r in Role)
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


@dataclass(frozen=True)
class RoleDeclaration:
    """A role a plugin adds: its name, what it is for, and core permissions it holds too."""

    name: str
    description: str
    grants: tuple[str, ...] = ()


#: roles declared by plugins (process-wide, like entry points); see :func:`declare_role`
DECLARED_ROLES: dict[str, RoleDeclaration] = {}


def declare_role(name: str, description: str, grants: Iterable[str] = ()) -> str:
    """Declare a plugin's role so its :class:`Permission` declarations may name it; returns ``name``.

    ``grants`` lists permissions declared elsewhere (the core's ``customer.read``, ...) that the
    role holds as well. Declaring the same role again with the same content is a no-op.
    """
    if not _ROLE.match(name or "") or name in ROLES:
        raise ValueError(f"role {name!r} must be a new lowercase word (letters, digits, _), not a core role")
    decl = RoleDeclaration(name, description, tuple(dict.fromkeys(grants)))
    if DECLARED_ROLES.setdefault(name, decl) != decl:
        raise ValueError(f"role {name!r} is declared twice with different content")
    return name


class PermissionDenied(CRMError):
    """The acting user lacks a permission; nothing was written (exit code 1)."""

    exit_code = 1

    def __init__(self, user: str, permission: str) -> None:
        super().__init__(f"user {user} lacks {permission}")
        self.user = user
        self.permission = permission


class UnknownActor(CRMError):
    """Users exist, but the actor is not one of them (or is deactivated)."""

    exit_code = 1


@dataclass(frozen=True)
class Permission:
    """A named right. ``roles``: the roles that hold it by default (admin always does)."""

    name: str
    description: str
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"permission name {self.name!r} must be dotted lowercase words, e.g. 'credit.release'")
        roles = (self.roles,) if isinstance(self.roles, str) else tuple(self.roles)
        bad = [r for r in roles if r not in ROLES and r not in DECLARED_ROLES]
        if bad:
            raise ValueError(f"permission {self.name}: unknown role(s) {', '.join(map(str, bad))} (roles: {', '.join(ROLES)}; "
                             "a plugin adds one with crmcore.permissions.declare_role)")
        object.__setattr__(self, "roles", tuple(dict.fromkeys(str(r) for r in roles)))


_M, _S, _MK, _C, _V = "manager", "sales", "marketing", "credit_controller", "viewer"

#: The core's own permissions and their default roles (admin has all of them anyway).
CORE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("customer.read", "See customers, contacts, interactions and accounts", (_M, _S, _MK, _C, _V)),
    Permission("customer.write", "Create and change customers", (_M, _S)),
    Permission("customer.archive", "Archive (soft-delete) a customer", (_M,)),
    Permission("customer.reassign", "Give a customer to another owner (taking an unowned one needs only customer.write)", (_M,)),
    Permission("customer.merge", "Merge a duplicate customer into another", (_M,)),
    Permission("contact.write", "Add and change contacts", (_M, _S, _MK)),
    Permission("interaction.write", "Log and change interactions", (_M, _S, _MK, _C)),
    Permission("account.post", "Post entries (invoices, payments, ...) to accounts", (_M, _C)),
    Permission("account.manage", "Open, hold and close accounts", (_M, _C)),
    Permission("user.manage", "Add users, change their roles, deactivate them", ()),
    Permission("plugin.manage", "Enable, disable and remove plugins", ()),
    Permission("import.run", "Run bulk imports", (_M,)),
)


class PermissionRegistry:
    """Every declared permission and the effective role -> permissions map."""

    def __init__(self) -> None:
        self.permissions: dict[str, Permission] = {}
        self.owners: dict[str, str] = {}
        self._grants: dict[str, frozenset[str]] | None = None
        self._overrides: dict[str, dict[str, Any]] = {}
        self.roles: tuple[str, ...] = ROLES  # the core's, then the declared roles loaded permissions name

    def add(self, permission: Permission, owner: str = "core") -> None:
        if not isinstance(permission, Permission):
            raise CRMError(f"{owner} registered {permission!r}, which is not a crmcore.Permission")
        if permission.name in self.permissions:
            raise CRMError(f"permission {permission.name} is declared twice ({self.owners[permission.name]} and {owner})")
        self.permissions[permission.name] = permission
        self.owners[permission.name] = owner
        self.roles = (*self.roles, *(r for r in permission.roles if r not in self.roles))
        self._grants = None

    @classmethod
    def build(cls, hooks: HookRelay | None = None, config: Mapping[str, Any] | None = None) -> PermissionRegistry:
        """The core's permissions, the loaded plugins', then crm.toml's ``[roles.*]`` applied."""
        reg = cls()
        for p in CORE_PERMISSIONS:
            reg.add(p)
        if hooks is not None:
            for owner, item in hooks.collect("crm_register_permissions"):
                try:
                    reg.add(item, owner=f"plugin {owner!r}")
                except CRMError as e:
                    raise PluginError(owner, "crm_register_permissions", e) from None
        reg.configure((config or {}).get("roles"))
        return reg

    # -- crm.toml ---------------------------------------------------------------------------
    def configure(self, table: Any) -> None:
        """Apply crm.toml's ``[roles.<role>]`` tables; a mistake is one ConfigError line."""
        if table is None:
            return
        if not isinstance(table, Mapping):
            raise ConfigError("crm.toml: [roles] must be a table of [roles.<role>] tables")
        for role, spec in table.items():
            where = f"crm.toml [roles.{role}]"
            if role not in self.roles:
                raise ConfigError(f"{where}: unknown role {role!r} (roles: {', '.join(self.roles)})")
            if role == ADMIN:
                raise ConfigError(f"{where}: admin always holds every permission and cannot be changed")
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{where}: must be a table with grant/revoke/permissions lists")
            unknown_keys = sorted(set(spec) - {"grant", "revoke", "permissions"})
            if unknown_keys:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown_keys)} (use grant, revoke or permissions)")
            if "permissions" in spec and ({"grant", "revoke"} & set(spec)):
                raise ConfigError(f"{where}: use either permissions or grant/revoke, not both")
            for key, names in spec.items():
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise ConfigError(f"{where}: {key} must be a list of permission names")
                for n in names:
                    if n not in self.permissions and self._namespace_known(n):
                        raise ConfigError(f"{where}: {key}: unknown permission {n!r}")
            self._overrides[role] = {k: list(v) for k, v in spec.items()}
        self._grants = None

    def _namespace_known(self, name: str) -> bool:
        """True when the name's first part is declared by the core or a loaded plugin, so a typo
        there is caught; names of plugins that are not loaded are kept as they are (inert)."""
        head = name.split(".", 1)[0]
        return any(p.split(".", 1)[0] == head for p in self.permissions)

    # -- queries ------------------------------------------------------------------------------
    def grants(self) -> dict[str, frozenset[str]]:
        """Role -> the permission names it holds (effective, after crm.toml)."""
        if self._grants is None:
            out: dict[str, frozenset[str]] = {}
            for role in self.roles:
                if role == ADMIN:
                    out[role] = frozenset(self.permissions)
                    continue
                names = {p.name for p in self.permissions.values() if role in p.roles}
                declared = DECLARED_ROLES.get(role)
                names |= {n for n in (declared.grants if declared else ()) if n in self.permissions}
                spec = self._overrides.get(role, {})
                if "permissions" in spec:
                    names = set(spec["permissions"])
                names |= set(spec.get("grant", ()))
                names -= set(spec.get("revoke", ()))
                out[role] = frozenset(names)
            self._grants = out
        return self._grants

    def allows(self, roles: Iterable[str], name: str) -> bool:
        """Whether any of ``roles`` holds ``name``. An undeclared name is held by admin only."""
        roles = list(roles)
        if ADMIN in roles:
            return True
        g = self.grants()
        return any(name in g.get(r, frozenset()) for r in roles)

    def role_table(self) -> list[dict[str, Any]]:
        """One row per permission: name, owner, description and whether each role holds it."""
        g = self.grants()
        return [{"permission": name, "owner": self.owners[name], "description": p.description,
                 **{r: name in g[r] for r in self.roles}} for name, p in sorted(self.permissions.items())]


def refuse_actor(actor: str, row: Any) -> None:
    """Raise :class:`UnknownActor` when users exist and ``row`` (the actor's user, or None) may not act."""
    if row is None:
        raise UnknownActor(f"{actor!r} is not a user of this CRM; act as an existing user "
                           "(--user NAME or CRM_USER; see `crm user list`)")
    if not row.active:
        raise UnknownActor(f"user {actor} is deactivated")


# -- checks outside a unit of work (admin operations that run their own transactions) ----------

def check_actor(crm: Any, actor: str, permission: str | None = None) -> None:
    """Raise unless ``actor`` may act (and holds ``permission``); a no-op in single-user mode.

    Used by the CLI before any command touches the database, and before admin operations
    (enabling plugins, migrations) that do not go through a unit of work.
    """
    from sqlalchemy import select

    from crmcore.models import User

    if not crm.initialised:
        return
    with crm.unit_of_work(actor, read_only=True) as uow:
        # only long-standing columns: this also runs before `crm db upgrade` on an older schema
        if uow.session.scalar(select(User.id).limit(1)) is None:
            return
        row = uow.session.execute(select(User.active, User.roles).where(User.username == actor)).first()
    refuse_actor(actor, row)
    if permission is not None and not crm.permissions.allows(row.roles or (), permission):
        raise PermissionDenied(actor, permission)


def audit_admin(crm: Any, actor: str, action: str, entity: str, entity_id: str | None,
                after: dict[str, Any] | None = None) -> None:
    """Record an admin operation done outside a unit of work (plugin enable/disable/remove)."""
    from sqlalchemy.orm import Session

    from crmcore.models import AuditEntry

    with Session(crm.engine) as s, s.begin():
        s.add(AuditEntry(actor=actor, action=action, entity=entity, entity_id=entity_id, after=after))


SINGLE_USER_NOTE = ("single-user mode: there are no users, so everyone may do everything; "
                    "`crm user add NAME --name ... --role admin` starts checking permissions")


def single_user(crm: Any) -> bool:
    """True when the (initialised) database has no users."""
    from sqlalchemy import select

    from crmcore.models import User

    if not crm.initialised:
        return True
    with crm.unit_of_work("system", read_only=True) as uow:
        return uow.session.scalar(select(User.id).limit(1)) is None


#: The write permission each core bulk entity needs besides ``import.run``.
IMPORT_PERMISSIONS: dict[str, str] = {
    "customers": "customer.write", "contacts": "contact.write",
    "interactions": "interaction.write", "transactions": "account.post",
}

