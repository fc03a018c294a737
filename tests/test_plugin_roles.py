"""``ROLES`` module attribute: a plugin adds roles its permissions grant to; a bad declaration is one line naming the plugin."""
from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

from crmcore import CRM, CRMError
from crmcore.permissions import DECLARED_ROLES, RoleDeclaration
from crmcore.plugins import DECLARED
from crmcore.sdk import Permission, Role


def plugin(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name, f"the {name} test plugin")
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_roles_is_not_a_register_hook_attribute() -> None:
    assert "ROLES" not in DECLARED.values()  # roles come before every register hook, not as one


def test_a_plugin_role_holds_the_permissions_granted_to_it(make_crm: Callable[..., CRM]) -> None:
    roles = (Role("p1_desk", "Answers tickets", grants=("customer.read",)),)  # declared as it is built
    perms = (Permission("p1desk.reply", "Reply to a ticket", ("p1_desk", "manager")),)
    crm = make_crm(plugins=[("p1desk", plugin("crm_p1desk", ROLES=roles, PERMISSIONS=perms))])
    assert "p1_desk" in crm.permissions.roles
    assert crm.permissions.grants()["p1_desk"] == frozenset({"p1desk.reply", "customer.read"})
    assert crm.permissions.allows(["p1_desk"], "p1desk.reply")
    assert not crm.permissions.allows(["p1_desk"], "customer.write")
    assert not crm.permissions.allows(["viewer"], "p1desk.reply")
    assert DECLARED_ROLES["p1_desk"] == RoleDeclaration("p1_desk", "Answers tickets", ("customer.read",))


def test_roles_are_declared_before_lazy_permissions_are_collected(make_crm: Callable[..., CRM]) -> None:
    # a plain RoleDeclaration is not declared at import: the core declares it when it registers
    # the plugin, so the lazily built permission below may name it
    assert "p1_lazy" not in DECLARED_ROLES
    module = plugin("crm_p1lazy", ROLES=[RoleDeclaration("p1_lazy", "Lazy desk")],
                    PERMISSIONS=lambda: (Permission("p1lazy.reply", "Reply", ("p1_lazy",)),))
    crm = make_crm(plugins=[("p1lazy", module)])
    assert crm.permissions.grants()["p1_lazy"] == frozenset({"p1lazy.reply"})


@pytest.mark.parametrize(("roles", "message"), [
    (("p1_str",), "plugin 'p1bad': ROLES must hold crmcore.sdk.Role(name, description, grants) items, got str 'p1_str'"),
    ({"p1_map": ("a desk", ())}, "plugin 'p1bad': ROLES must hold crmcore.sdk.Role(name, description, grants) items, "
                                  "got dict \"{'p1_map': ('a desk', ())}\""),
    ((RoleDeclaration("Bad Name", "x"),), "plugin 'p1bad': role 'Bad Name' must be a new lowercase word "
                                          "(letters, digits, _), not a core role"),
    ((RoleDeclaration("sales", "x"),), "plugin 'p1bad': role 'sales' must be a new lowercase word "
                                       "(letters, digits, _), not a core role"),
    ((RoleDeclaration("p1_grants", "x", "customer.read"),),  # type: ignore[arg-type]
     "plugin 'p1bad': role 'p1_grants': grants must be a tuple of permission names"),
])
def test_a_bad_roles_declaration_is_one_line_naming_the_plugin(make_crm: Callable[..., CRM], roles: Any,
                                                               message: str) -> None:
    with pytest.raises(CRMError) as e:
        make_crm(plugins=[("p1bad", plugin("crm_p1bad", ROLES=roles))])
    assert str(e.value) == message
    assert "p1_grants" not in DECLARED_ROLES and "p1_str" not in DECLARED_ROLES


def test_a_role_declared_twice_differently_is_refused_naming_the_plugin(make_crm: Callable[..., CRM]) -> None:
    Role("p1_twice", "First meaning")
    with pytest.raises(CRMError, match=r"^plugin 'p1twice': role 'p1_twice' is declared twice with different content$"):
        make_crm(plugins=[("p1twice", plugin("crm_p1twice", ROLES=(RoleDeclaration("p1_twice", "Second meaning"),)))])


def test_a_bad_role_fails_where_it_is_built() -> None:
    with pytest.raises(ValueError, match=r"^role 'Support' must be a new lowercase word"):
        Role("Support", "Capitalised")
