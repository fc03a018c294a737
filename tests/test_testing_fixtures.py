"""The fixtures crmcore.testing gives plugin authors: users by role (``crm_user``, ``crm_as``) and
a token-authenticated HTTP client (``api_client``), on the test's ``crm``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from crmcore import CRM
from crmcore.models import User
from crmcore.permissions import PermissionDenied, UnknownActor
from crmcore.schemas import CustomerCreate, UserCreate
from crmcore.testing import ADMIN_USER, add_user


@pytest.fixture
def crm(make_crm: Callable[..., CRM]) -> CRM:
    return make_crm(config={"visibility": {"sales": "own"}})


def roles_of(crm: CRM) -> dict[str, list[str]]:
    with crm.unit_of_work("system", read_only=True) as uow:
        return {u.username: sorted(u.roles or []) for u in uow.session.scalars(select(User))}


def test_users_by_role_are_added_once_with_an_admin(crm: CRM, crm_user: Callable[..., str]) -> None:
    assert crm_user("sales") == "sales"
    assert crm_user("sales", "manager") == "sales_manager"
    assert crm_user("sales") == "sales"  # the same user again, not a second one
    assert crm_user("viewer", username="vic") == "vic"
    assert roles_of(crm) == {ADMIN_USER: ["admin"], "sales": ["sales"], "sales_manager": ["manager", "sales"],
                             "vic": ["viewer"]}


def test_a_username_with_other_roles_is_an_error(crm: CRM, crm_user: Callable[..., str]) -> None:
    crm_user("sales", username="anna")
    with pytest.raises(ValueError, match=r"user 'anna' exists with roles \['sales'\] .* not \['viewer'\]"):
        crm_user("viewer", username="anna")


def test_users_are_added_as_an_existing_admin(crm: CRM) -> None:
    with crm.unit_of_work("boss") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Boss", roles=["admin"]))
    assert add_user(crm, "sales") == "sales"
    assert roles_of(crm) == {"boss": ["admin"], "sales": ["sales"]}  # no tester needed


def test_crm_as_acts_with_the_roles_permissions(crm: CRM, crm_as: Callable[..., Any]) -> None:
    with crm_as("admin") as uow:
        uow.customers.create(CustomerCreate(name="Free", external_ref="F-1"))
    with crm_as("sales") as uow:
        assert uow.actor == "sales" and uow.user is not None and uow.user.roles == ["sales"]
        uow.customers.create(CustomerCreate(name="Mine", external_ref="M-1"))  # sales may write customers
    with crm_as("sales", read_only=True) as uow:  # "own": the unowned customer is not visible
        assert [c.external_ref for c in uow.customers.search(_query()).items] == ["M-1"]
    with pytest.raises(PermissionDenied), crm_as("viewer") as uow:
        uow.customers.create(CustomerCreate(name="Nope"))
    with pytest.raises(UnknownActor), crm.unit_of_work("nobody") as uow:  # single-user mode is over
        uow.customers.create(CustomerCreate(name="Nope"))


def _query() -> Any:
    from crmcore.schemas import CustomerQuery

    return CustomerQuery()


def test_api_client_sends_the_users_token(crm: CRM, api_client: Callable[..., Any]) -> None:
    admin = api_client()
    assert admin.username == ADMIN_USER
    r = admin.post("/customers", json={"name": "Free", "external_ref": "F-1"})
    assert r.status_code == 201, r.text
    sales = api_client("sales")
    assert sales.username == "sales"
    r = sales.post("/customers", json={"name": "Mine", "external_ref": "M-1"})
    assert r.status_code == 201, r.text
    assert [c["external_ref"] for c in sales.get("/customers").json()["items"]] == ["M-1"]  # own customers only
    assert sorted(c["external_ref"] for c in admin.get("/customers").json()["items"]) == ["F-1", "M-1"]
    viewer = api_client("viewer")
    r = viewer.post("/customers", json={"name": "Nope"})
    assert r.status_code == 403 and "customer.write" in r.text
    anonymous = api_client()
    anonymous.headers.pop("Authorization")
    assert anonymous.get("/customers").status_code == 401


def test_frozen_clock_is_every_units_now(make_crm: Callable[..., CRM], frozen_clock: Any) -> None:
    from crmcore.schemas import InteractionCreate
    from crmcore.testing import FROZEN_AT

    crm = make_crm()
    with crm.unit_of_work("t") as uow:
        assert uow.now() == FROZEN_AT
        c = uow.customers.create(CustomerCreate(name="Acme"))
        first = uow.interactions.log(c.id, InteractionCreate(channel="phone", subject="x"))
        assert first.occurred_at == FROZEN_AT
    frozen_clock.advance(hours=2)
    other = make_crm()  # a CRM opened later is frozen too
    with other.unit_of_work("t") as uow:
        assert uow.now() == FROZEN_AT.replace(hour=10)
    with pytest.raises(ValueError, match="aware datetime"):
        frozen_clock.set(FROZEN_AT.replace(tzinfo=None))


def test_without_the_fixture_time_runs(crm: CRM) -> None:
    import datetime as dt

    with crm.unit_of_work("t") as uow:
        assert abs(uow.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_frozen_clock_reaches_a_crm_opened_before_it(crm: CRM, frozen_clock: Any) -> None:
    from crmcore.testing import FROZEN_AT

    with crm.unit_of_work("t") as uow:
        assert uow.now() == FROZEN_AT
