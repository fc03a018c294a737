"""The console's contact and interaction forms offer the words of crm.toml ``[vocabularies]``,
and a word outside them is refused next to its field, nothing written."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from crmcore.api import create_app
from crmcore.console import with_console
from crmcore.console.auth import set_password
from crmcore.models import Contact
from crmcore.schemas import CustomerCreate, UserCreate
from tests.console.conftest import FAST_HASH, PASSWORD, csrf_of, sign_in

ROLES = ["initiator", "user", "influencer", "decider", "gatekeeper", "buyer"]


def _options(html: str, name: str) -> list[list[str]]:
    """The option values of each ``name`` select on the page (the timeline filter, the form)."""
    selects = re.findall(rf'<select id="f-{name}" name="{name}".*?</select>', html, re.S)
    assert selects, f"no {name} select on the page"
    return [[v for v in re.findall(r'<option value="([^"]*)"', s) if v] for s in selects]


def _console(make_crm: Callable[..., Any], vocabularies: dict[str, list[str]]) -> tuple[Any, TestClient, int]:
    crm = make_crm(config={"vocabularies": vocabularies, "console": FAST_HASH})
    with crm.unit_of_work("boss") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Bea Boss", roles=["admin"]))
    with crm.unit_of_work("boss") as uow:
        set_password(uow, "boss", PASSWORD)
        cid = uow.customers.create(CustomerCreate(name="Alpine Kitchens GmbH", external_ref="ALP")).id
    c = TestClient(with_console(create_app(crm), crm))
    sign_in(c, "boss")
    return crm, c, cid


def test_forms_list_the_configured_words(make_crm: Callable[..., Any]) -> None:
    crm, c, cid = _console(make_crm, {"contact_roles": ROLES, "interaction_kinds": ["inquiry", "site_visit", "other"]})
    with c:
        page = c.get(f"/console/customers/{cid}").text
        assert _options(page, "role") == [ROLES]
        assert _options(page, "kind") == [["core", "ledger", "inquiry", "site_visit", "other"], ["inquiry", "site_visit", "other"],
                                         ["invoice", "payment", "credit_note"]]  # the filter, the form, postings
        r = c.post(f"/console/customers/{cid}/contacts", data={"csrf": csrf_of(page), "name": "Bo", "role": "buyer"},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        with crm.unit_of_work("boss", read_only=True) as uow:
            assert [x.role for x in uow.contacts.list(cid)] == ["buyer"]


def test_a_word_outside_the_vocabulary_is_refused_on_the_form(make_crm: Callable[..., Any]) -> None:
    crm, c, cid = _console(make_crm, {"contact_roles": ["decider", "buyer"]})
    with c:
        page = c.get(f"/console/customers/{cid}").text
        assert _options(page, "role") == [["decider", "buyer"]]
        r = c.post(f"/console/customers/{cid}/contacts", data={"csrf": csrf_of(page), "name": "Bo", "role": "gatekeeper"})
        assert r.status_code == 422
        assert "allowed: decider, buyer; configured in crm.toml [vocabularies] contact_roles" in r.text
        with crm.unit_of_work("boss", read_only=True) as uow:
            assert uow.session.query(Contact).count() == 0
