"""The admin pages through the TestClient: users and roles, plugins (enable and disable with the
CLI's checks), the audit log's filters and paging; only for administrators."""
from __future__ import annotations

import re

from starlette.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.console import with_console
from crmcore.console.auth import set_password
from crmcore.schemas import CustomerCreate, UserCreate
from tests.console.conftest import FAST_HASH, PASSWORD, csrf_of, sign_in


def test_only_administrators(client):
    for user in ("anna", "carl"):
        c = client(user)
        assert "/console/admin" not in c.get("/console/").text
        for path in ("/console/admin", "/console/admin/plugins", "/console/admin/audit"):
            r = c.get(path)
            assert r.status_code == 403 and ("user.manage" in r.text or "plugin.manage" in r.text), (user, path)
        token = csrf_of(c.get("/console/").text)
        assert c.post("/console/admin/plugins/credit/enable", data={"csrf": token}).status_code == 403


def test_users_and_roles(client):
    page = client("boss").get("/console/admin")
    assert page.status_code == 200 and "Anna Berg" in page.text and "credit_controller" in page.text
    assert "<code>customer.read</code>" in page.text and 'href="/console/admin"' in page.text


def test_plugins_enable_and_disable_with_the_cli_checks(empty_database_url, cli, installed_plugins):
    """Real entry points on a database made by `crm init`, as `crm plugins enable` sees them."""
    assert cli("init", database=empty_database_url).exit_code == 0
    crm = CRM.open(empty_database_url, entry_points=True, config={"console": dict(FAST_HASH)})
    try:
        with crm.unit_of_work("boss") as uow:
            uow.users.add(UserCreate(username="boss", display_name="Bea Boss", roles=["admin"]))
        with crm.unit_of_work("boss") as uow:
            set_password(uow, "boss", PASSWORD)
        with TestClient(with_console(create_app(crm), crm)) as boss:
            sign_in(boss, "boss")
            listing = boss.get("/console/admin/plugins").text
            assert "testplug" in listing and "needy" in listing and "crm_broken needs a library" in listing
            token = csrf_of(listing)
            r = boss.post("/console/admin/plugins/needy/enable", data={"csrf": token})
            assert r.status_code == 409 and "requires testplug" in r.text  # the CLI's requirement check
            r = boss.post("/console/admin/plugins/broken/enable", data={"csrf": token})
            assert r.status_code == 400 and "cannot be enabled" in r.text
            r = boss.post("/console/admin/plugins/testplug/enable", data={"csrf": token}, follow_redirects=False)
            assert r.status_code == 303 and "testplug" in crm.enabled_ids()
            assert "restart" in boss.get("/console/admin/plugins").text  # loaded at the next start
            assert boss.post("/console/admin/plugins/nosuch/enable", data={"csrf": token}).status_code == 404
            r = boss.post("/console/admin/plugins/testplug/disable", data={"csrf": token}, follow_redirects=False)
            assert r.status_code == 303 and "testplug" not in crm.enabled_ids()
            assert boss.post("/console/admin/plugins/testplug/explode", data={"csrf": token}).status_code == 422
        with crm.unit_of_work("boss", read_only=True) as uow:
            assert [(e.actor, e.action) for e in uow.audit.list("plugin", "testplug")] == [("boss", "disable"), ("boss", "enable")]
    finally:
        crm.close()


def test_audit_log_filters_and_pages(client, console_crm):
    with console_crm.unit_of_work("anna") as uow:
        for i in range(55):
            uow.customers.create(CustomerCreate(name=f"Paged {i:02d}", external_ref=f"P{i:02d}"))
    boss = client("boss")
    first = boss.get("/console/admin/audit?actor=anna&entity=customer")
    assert first.status_code == 200 and first.text.count("<tr>") == 51  # header + 50 rows
    older = re.search(r'href="(/console/admin/audit\?[^"]*before=\d+)"', first.text).group(1).replace("&amp;", "&")
    second = boss.get(older)
    assert second.status_code == 200 and second.text.count("<tr>") == 1 + 5 + 0  # the 5 oldest of anna's 55
    assert "Older entries" not in second.text and "Newest" in second.text
    assert boss.get("/console/admin/audit?actor=nobody").text.count("<tr>") == 0
    bad = boss.get("/console/admin/audit?before=yesterday")
    assert bad.status_code == 422 and "Not a page of the audit log." in bad.text
    assert boss.get("/console/admin/audit?entity=%00").status_code == 422
