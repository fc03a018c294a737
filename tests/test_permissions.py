"""Permissions: named strings, default role sets, crm.toml overrides, enforcement in every writing
service, single-user mode, the acting user, and the audit trail of who did what."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from crmcore import CRM, ConfigError, Permission, PermissionDenied, PluginError, hookimpl
from crmcore.models import AuditEntry, Contact, Customer, Interaction, Transaction, User
from crmcore.permissions import CORE_PERMISSIONS, UnknownActor
from crmcore.schemas import (
    AccountCreate,
    ContactCreate,
    CustomerCreate,
    InteractionCreate,
    TransactionCreate,
    UserCreate,
)

ROLES = ("admin", "manager", "sales", "marketing", "credit_controller", "viewer")

# The documented default table (docs/admin-guide.md): which roles besides admin hold each core permission.
DEFAULTS: dict[str, set[str]] = {
    "customer.read": {"manager", "sales", "marketing", "credit_controller", "viewer"},
    "customer.write": {"manager", "sales"},
    "customer.archive": {"manager"},
    "customer.reassign": {"manager"},
    "customer.merge": {"manager"},
    "contact.write": {"manager", "sales", "marketing"},
    "interaction.write": {"manager", "sales", "marketing", "credit_controller"},
    "account.post": {"manager", "credit_controller"},
    "account.manage": {"manager", "credit_controller"},
    "user.manage": set(),
    "plugin.manage": set(),
    "import.run": {"manager"},
}


def test_core_declares_the_documented_permissions() -> None:
    assert {p.name: set(p.roles) for p in CORE_PERMISSIONS} == DEFAULTS


def setup_users(crm: CRM) -> None:
    with crm.unit_of_work("boss") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Boss", roles=["admin"]))
        for role in ROLES:
            uow.users.add(UserCreate(username=f"u_{role}", display_name=role, roles=[role]))


def org(crm: CRM, name: str = "Acme") -> int:
    with crm.unit_of_work("boss") as uow:
        cid = uow.customers.create(CustomerCreate(name=name, kind="organization")).id
        uow.accounts.open(cid, AccountCreate(currency="EUR"))
        return cid


# Each operation: (permission it needs, setup as boss -> argument, the write as the acting user)
def _op_create(uow: Any, _: int) -> None:
    uow.customers.create(CustomerCreate(name="New"))


def _op_update(uow: Any, cid: int) -> None:
    from crmcore.schemas import CustomerUpdate

    uow.customers.update(cid, CustomerUpdate(industry="Steel"))


def _op_archive(uow: Any, cid: int) -> None:
    uow.customers.archive(cid)


def _op_merge(uow: Any, cid: int) -> None:
    uow.customers.merge(cid, cid - 1)  # the customer made just before it


def _op_contact(uow: Any, cid: int) -> None:
    uow.contacts.add(cid, ContactCreate(name="Jane Roe"))


def _op_interaction(uow: Any, cid: int) -> None:
    uow.interactions.log(cid, InteractionCreate(channel="phone", subject="hello"))


def _op_post(uow: Any, cid: int) -> None:
    uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="10", reference=f"I-{cid}"))


def _op_hold(uow: Any, cid: int) -> None:
    acc = uow.accounts.list(cid)[0]
    uow.accounts.set_status(acc.id, "on_hold")


def _op_user(uow: Any, cid: int) -> None:
    uow.users.add(UserCreate(username=f"new{cid}", display_name="New"))


OPERATIONS: list[tuple[str, Callable[[Any, int], None]]] = [
    ("customer.write", _op_create), ("customer.write", _op_update), ("customer.archive", _op_archive),
    ("customer.merge", _op_merge), ("contact.write", _op_contact), ("interaction.write", _op_interaction),
    ("account.post", _op_post), ("account.manage", _op_hold), ("user.manage", _op_user),
]


def counts(crm: CRM) -> dict[str, Any]:
    with crm.unit_of_work("boss", read_only=True) as uow:
        out: dict[str, Any] = {m.__tablename__: uow.session.scalar(select(func.count()).select_from(m))
                               for m in (Customer, Contact, Interaction, Transaction, User, AuditEntry)}
        out["archived"] = uow.session.scalar(select(func.count()).select_from(Customer).where(Customer.archived))
        out["industry"] = sorted(filter(None, uow.session.scalars(select(Customer.industry))))
        out["on_hold"] = [str(a.status) for a in uow.accounts.list()]
        return out


@pytest.mark.parametrize("role", ROLES)
def test_each_default_role_is_allowed_and_refused_as_documented(crm: CRM, role: str) -> None:
    setup_users(crm)
    actor = f"u_{role}"
    for permission, op in OPERATIONS:
        org(crm, "Source")
        cid = org(crm, "Target")
        before = counts(crm)
        allowed = role == "admin" or role in DEFAULTS[permission]
        if allowed:
            with crm.unit_of_work(actor) as uow:
                op(uow, cid)
            with crm.unit_of_work("boss", read_only=True) as uow:  # reading the audit log is an admin's act
                latest = uow.audit.list(limit=1)[0].actor
            assert latest == actor, (permission, op.__name__)  # every write is audited with its actor
            assert counts(crm) != before
        else:
            with pytest.raises(PermissionDenied) as err, crm.unit_of_work(actor) as uow:
                op(uow, cid)
            assert str(err.value) == f"user {actor} lacks {permission}" and err.value.exit_code == 1
            assert counts(crm) == before, (permission, op.__name__)  # nothing written
        with crm.unit_of_work(actor, read_only=True) as uow:
            assert uow.can(permission) is allowed


def test_single_user_mode_grants_everything_to_anyone(crm: CRM) -> None:
    with crm.unit_of_work("whoever") as uow:
        assert uow.user is None and uow.single_user and uow.can("user.manage") and uow.can("no.such_permission")
        cid = uow.customers.create(CustomerCreate(name="Acme")).id
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount="5", reference="A"))
    with crm.unit_of_work("x", read_only=True) as uow:
        assert {e.actor for e in uow.audit.list()} == {"whoever"}


def test_first_user_must_be_admin_and_then_the_actor_must_exist(crm: CRM) -> None:
    from crmcore import Conflict

    with pytest.raises(Conflict, match="the first user must have the admin role"), crm.unit_of_work("someone") as uow:
        uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales"]))
    with crm.unit_of_work("someone") as uow:
        assert uow.users.list() == []
        uow.users.add(UserCreate(username="boss", display_name="Boss", roles=["admin"]))
    with pytest.raises(UnknownActor, match="'someone' is not a user of this CRM") as err, crm.unit_of_work("someone") as uow:
        uow.customers.create(CustomerCreate(name="X"))
    assert err.value.exit_code == 1 and "\n" not in str(err.value)
    with crm.unit_of_work("boss") as uow:
        assert uow.user is not None and uow.user.username == "boss"
        uow.users.add(UserCreate(username="anna", display_name="Anna", roles=["sales"]))
        uow.customers.create(CustomerCreate(name="Y"))


def test_deactivated_user_cannot_act_and_last_admin_is_kept(crm: CRM) -> None:
    from crmcore import Conflict

    setup_users(crm)
    with crm.unit_of_work("boss") as uow:
        uow.users.set_active("u_sales", False)
    with pytest.raises(UnknownActor, match="user u_sales is deactivated"), crm.unit_of_work("u_sales") as uow:
        uow.customers.create(CustomerCreate(name="X"))
    with crm.unit_of_work("boss") as uow:
        uow.users.set_active("u_admin", False)
    for change in (lambda u: u.users.set_active("boss", False), lambda u: u.users.set_roles("boss", ["manager"])):
        with pytest.raises(Conflict, match="user boss is the last active admin"), crm.unit_of_work("boss") as uow:
            change(uow)
    with crm.unit_of_work("boss") as uow:
        uow.users.set_roles("u_sales", ["sales", "marketing", "sales"])
        assert uow.users.get_by_username("u_sales").roles == ["sales", "marketing"]
        uow.users.set_active("u_sales", True)
        actions = [(e.action, e.actor) for e in uow.audit.list("user", limit=4)]
    assert actions[:3] == [("activate", "boss"), ("roles", "boss"), ("deactivate", "boss")]
    with pytest.raises(PermissionDenied, match="user u_manager lacks user.manage"), crm.unit_of_work("u_manager") as uow:
        uow.users.set_roles("u_sales", ["admin"])


# -- plugins' permissions and crm.toml overrides -----------------------------------------------

class CreditPerms:
    PLUGIN_ID = "creditish"

    @staticmethod
    @hookimpl
    def crm_register_permissions(register: Any) -> None:
        register(Permission("credit.release", "Release a credit hold", roles=("credit_controller",)))
        register(Permission("credit.hold", "Put a customer on hold", roles=("credit_controller", "manager")))


def test_plugin_permissions(make_crm: Any) -> None:
    crm = make_crm(plugins=[CreditPerms])
    setup_users(crm)
    for role in ROLES:
        with crm.unit_of_work(f"u_{role}", read_only=True) as uow:
            assert uow.can("credit.release") is (role in ("admin", "credit_controller"))
            assert uow.can("credit.hold") is (role in ("admin", "credit_controller", "manager"))
    with pytest.raises(PermissionDenied, match="^user u_sales lacks credit.release$"), crm.unit_of_work("u_sales") as uow:
        uow.require("credit.release")
    assert crm.permissions.owners["credit.release"] == "plugin 'creditish'"


def test_crm_toml_role_overrides(make_crm: Any) -> None:
    crm = make_crm(plugins=[CreditPerms], config={"roles": {
        "sales": {"grant": ["account.post", "credit.release", "other_plugin.thing"], "revoke": ["customer.write"]},
        "viewer": {"permissions": ["customer.read", "interaction.write"]},
    }})
    setup_users(crm)
    with crm.unit_of_work("u_sales", read_only=True) as uow:
        assert uow.can("account.post") and uow.can("credit.release") and not uow.can("customer.write")
        assert uow.can("contact.write")  # the other defaults stay
    with crm.unit_of_work("u_viewer", read_only=True) as uow:
        assert uow.can("interaction.write") and not uow.can("customer.write")
    cid = org(crm)
    with crm.unit_of_work("u_viewer") as uow:
        uow.interactions.log(cid, InteractionCreate(channel="phone", subject="allowed by crm.toml"))
    with pytest.raises(PermissionDenied, match="user u_sales lacks customer.write"), crm.unit_of_work("u_sales") as uow:
        uow.customers.create(CustomerCreate(name="refused"))


@pytest.mark.parametrize("roles, message", [
    ({"boss": {"grant": ["customer.write"]}}, "crm.toml [roles.boss]: unknown role 'boss'"),
    ({"admin": {"revoke": ["customer.write"]}}, "admin always holds every permission"),
    ({"sales": {"grant": ["customer.wirte"]}}, "crm.toml [roles.sales]: grant: unknown permission 'customer.wirte'"),
    ({"sales": {"grant": "customer.write"}}, "grant must be a list of permission names"),
    ({"sales": {"add": ["customer.write"]}}, "unknown key(s) add"),
    ({"sales": {"permissions": [], "grant": ["customer.write"]}}, "either permissions or grant/revoke"),
    ({"sales": ["customer.write"]}, "must be a table"),
    ("sales", "[roles] must be a table"),
])
def test_bad_role_config_fails_at_open(make_crm: Any, roles: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_crm(config={"roles": roles})
    assert message in str(err.value) and err.value.exit_code == 2


@pytest.mark.parametrize("name, roles, message", [
    ("Credit Release", (), "must be dotted lowercase words"),
    ("credit", (), "must be dotted lowercase words"),
    ("credit.release", ("boss",), "unknown role(s) boss"),
])
def test_bad_permission_declarations(name: str, roles: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Permission(name, "x", roles=roles)


def test_duplicate_permission_is_the_plugins_error(make_crm: Any) -> None:
    class Dup:
        PLUGIN_ID = "dup"

        @staticmethod
        @hookimpl
        def crm_register_permissions(register: Any) -> None:
            register(Permission("customer.write", "mine"))

    with pytest.raises(PluginError, match="dup.*permission customer.write is declared twice"):
        make_crm(plugins=[Dup])


# -- the command line ---------------------------------------------------------------------------------

def lines(res: Any) -> list[str]:
    return res.stderr.strip().splitlines()


def test_cli_users_roles_and_refusals(cli: Any) -> None:
    res = cli("plugins", "list")
    assert res.exit_code == 0 and "single-user mode" in res.stdout
    res = cli("user", "add", "anna", "--name", "Anna", "--role", "sales")
    assert res.exit_code == 1 and lines(res) == [("error: the first user must have the admin role (--role admin), "
                                                  "or no one could manage users once single-user mode ends")]
    res = cli("user", "add", "tester", "--name", "Tess", "--role", "admin")
    assert res.exit_code == 0 and "single-user mode has ended" in res.stdout
    assert cli("user", "add", "anna", "--name", "Anna", "--role", "sales").exit_code == 0
    assert cli("user", "add", "vic", "--name", "Vic", "--role", "viewer").exit_code == 0
    assert "single-user mode" not in cli("plugins", "list").stdout

    assert cli("customer", "add", "Acme", user="anna").exit_code == 0
    res = cli("customer", "archive", "1", user="anna")
    assert res.exit_code == 1 and lines(res) == ["error: user anna lacks customer.archive"]
    res = cli("customer", "add", "Nope", user="vic")
    assert res.exit_code == 1 and lines(res) == ["error: user vic lacks customer.write"]
    res = cli("customer", "list", "--json", user="vic")  # reads go on for any active user
    assert res.exit_code == 0 and [c["name"] for c in json.loads(res.stdout)] == ["Acme"]

    for who in ("ghost", "Anna"):
        res = cli("customer", "list", user=who)
        assert res.exit_code == 1 and len(lines(res)) == 1 and f"'{who}' is not a user of this CRM" in lines(res)[0]
    for args in (("plugins", "disable", "value_analysis"), ("db", "upgrade")):
        res = cli(*args, user="anna")
        assert res.exit_code == 1 and lines(res) == ["error: user anna lacks plugin.manage"]
    res = cli("user", "roles", "anna", "sales", "manager", user="anna")
    assert res.exit_code == 1 and lines(res) == ["error: user anna lacks user.manage"]

    assert cli("user", "roles", "anna", "sales", "manager").exit_code == 0
    assert cli("customer", "archive", "1", user="anna").exit_code == 0
    res = cli("user", "roles", "anna", "wizard")
    assert res.exit_code == 1 and "invalid role" in lines(res)[0]
    assert cli("user", "deactivate", "anna").exit_code == 0
    res = cli("customer", "list", user="anna")
    assert res.exit_code == 1 and lines(res) == ["error: user anna is deactivated"]
    users = {u["username"]: u for u in json.loads(cli("user", "list", "--json").stdout)}
    assert users["anna"]["active"] is False and users["anna"]["roles"] == ["sales", "manager"]
    audit = json.loads(cli("audit", "--json", "--limit", "100").stdout)
    assert {(a["actor"], a["action"], a["entity"]) for a in audit} >= {
        ("tester", "create", "user"), ("anna", "create", "customer"), ("anna", "archive", "customer"),
        ("tester", "roles", "user"), ("tester", "deactivate", "user")}
    perms = json.loads(cli("user", "permissions", "--json").stdout)
    row = next(p for p in perms if p["permission"] == "customer.merge")
    assert row["manager"] and row["admin"] and not row["sales"]


def test_cli_import_needs_import_run_and_the_entity_permission(cli: Any, tmp_path: Any) -> None:
    assert cli("user", "add", "tester", "--name", "Tess", "--role", "admin").exit_code == 0
    assert cli("user", "add", "sam", "--name", "Sam", "--role", "sales").exit_code == 0
    assert cli("user", "add", "max", "--name", "Max", "--role", "manager").exit_code == 0
    assert cli("user", "add", "mia", "--name", "Mia", "--role", "marketing").exit_code == 0
    f = tmp_path / "c.csv"
    f.write_text("external_ref,name\nC1,Acme\nC2,Beta\n", encoding="utf-8")
    res = cli("import", "customers", str(f), user="sam")
    assert res.exit_code == 1 and lines(res)[-1] == "error: user sam lacks import.run"
    assert json.loads(cli("customer", "list", "--json").stdout) == []
    assert cli("import", "customers", str(f), user="max").exit_code == 0
    assert len(json.loads(cli("customer", "list", "--json").stdout)) == 2
    # crm.toml lets marketing import, but marketing may not write customers
    (tmp_path / "crm.toml").write_text('[roles.marketing]\ngrant = ["import.run"]\n', encoding="utf-8")
    f.write_text("external_ref,name\nC3,Gamma\n", encoding="utf-8")
    res = cli("import", "customers", str(f), user="mia")
    assert res.exit_code == 1 and lines(res)[-1] == "error: user mia lacks customer.write"
    g = tmp_path / "i.csv"
    g.write_text("customer_ref,channel,subject,external_ref,occurred_at\nC1,phone,hello,I1,2024-01-02\n", encoding="utf-8")
    res = cli("import", "interactions", str(g), user="mia")
    assert res.exit_code == 0, res.output
    assert len(json.loads(cli("customer", "list", "--json").stdout)) == 2


def test_init_says_single_user_mode_until_a_user_exists(cli: Any, empty_database_url: str) -> None:
    res = cli("init", database=empty_database_url)
    assert res.exit_code == 0 and "single-user mode" in res.stdout
    assert cli("user", "add", "tester", "--name", "Tess", "--role", "admin", database=empty_database_url).exit_code == 0
    res = cli("init", database=empty_database_url)
    assert res.exit_code == 0 and "single-user mode" not in res.stdout
