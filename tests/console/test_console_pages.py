"""Core pages through the TestClient: visibility, errors as pages, merge preview, plugin hooks, catalogues."""
from __future__ import annotations

import re
from pathlib import Path

from crmcore import hookimpl
from crmcore.console import ConsolePage, ConsoleSection, ConsoleTemplates, HomeCard, NavEntry
from crmcore.console.i18n import LOCALE_DIR, negotiate
from crmcore.plugins import describe
from tests.console.conftest import csrf_of

CONSOLE = Path(__file__).resolve().parents[2] / "crmcore" / "console"


def ids(crm):
    with crm.unit_of_work("boss", read_only=True) as uow:
        return {c.external_ref: c.id for c in uow.customers.search(__import__("crmcore.schemas", fromlist=["x"]).CustomerQuery()).items}


def test_a_sales_user_sees_only_own_customers(client, console_crm):
    c = client("anna")
    listing = c.get("/console/customers").text
    assert "Alpine Kitchens GmbH" in listing and "Сибирские окна" not in listing
    sib = ids(console_crm)["SIB"]
    for path in (f"/console/customers/{sib}", f"/console/customers/{sib}/edit", f"/console/customers/{sib}/merge"):
        r = c.get(path)
        assert r.status_code == 404 and f"customer {sib} not found" in r.text, path
    token = csrf_of(c.get("/console/").text)
    r = c.post(f"/console/customers/{sib}/interactions", data={"csrf": token, "channel": "phone", "subject": "probe"})
    assert r.status_code == 404


def test_bad_input_is_a_page_never_a_traceback(client, console_crm):
    c = client("boss")
    for path, status in (("/console/customers/99999999999999999999", 404), ("/console/customers?after=-1", 200),
                         ("/console/customers?country=XX", 200), ("/console/customers/0", 404),
                         ("/console/accounts/123/statement", 404), ("/console/contacts/5/edit", 404)):
        r = c.get(path)
        assert r.status_code == status, (path, r.status_code)
        assert "Traceback" not in r.text and "<html" in r.text
    assert 'id="e-country"' in c.get("/console/customers?country=XX").text


def test_validation_errors_stay_next_to_their_field(client):
    c = client("boss")
    token = csrf_of(c.get("/console/customers/new").text)
    r = c.post("/console/customers/new", data={"csrf": token, "name": "", "email": "nope", "kind": "organization",
                                                "lifecycle_stage": "prospect", "industry": "Ovens"})
    assert r.status_code == 422
    assert 'id="e-name"' in r.text and 'id="e-email"' in r.text and 'value="Ovens"' in r.text


def test_stale_edit_keeps_both_values(client, console_crm):
    c = client("boss")
    alp = ids(console_crm)["ALP"]
    form = c.get(f"/console/customers/{alp}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    with console_crm.unit_of_work("boss") as uow:
        from crmcore.schemas import CustomerUpdate

        uow.customers.update(alp, CustomerUpdate(industry="Ovens"))
    data = {"csrf": csrf_of(form), "version": version, "name": "Alpine Kitchens GmbH", "kind": "organization",
            "lifecycle_stage": "prospect", "industry": "Kitchens", "country": "DE", "owner": "anna", "tags": "trade",
            "external_ref": "ALP"}
    r = c.post(f"/console/customers/{alp}/edit", data=data)
    assert r.status_code == 409 and "Someone else changed this customer" in r.text
    assert re.search(r"<th scope=\"row\">Industry</th><td>Kitchens</td><td>Ovens</td>", r.text)
    newer = re.search(r'name="version" value="(\d+)"', r.text).group(1)
    assert int(newer) == int(version) + 1
    assert c.post(f"/console/customers/{alp}/edit", data={**data, "version": newer}, follow_redirects=False).status_code == 303


def test_merge_preview_moves_nothing_until_confirmed(client, console_crm):
    c = client("boss")
    refs = ids(console_crm)
    r = c.get(f"/console/customers/{refs['SIB']}/merge?into=ALP")
    assert r.status_code == 200 and "What moves to Alpine Kitchens GmbH" in r.text
    assert ids(console_crm)["SIB"]  # still there: the preview was rolled back
    r = c.post(f"/console/customers/{refs['SIB']}/merge", data={"csrf": csrf_of(r.text), "into": "ALP", "confirm": "yes"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/customers/{refs['ALP']}"
    assert "SIB" not in ids(console_crm)


def test_accept_language_and_catalogues():
    assert negotiate("ru-RU,ru;q=0.9,en;q=0.5") == "ru"
    assert negotiate("zh-CN,zh;q=0.9") == "zh_Hans"
    assert negotiate("zh-TW") == "en" and negotiate("de-DE") == "en" and negotiate(None) == "en"
    # every message the console uses has a translation in both catalogues
    pattern = re.compile(r'''\b_\(\s*(["'])((?:\\.|(?!\1).)*?)\1\s*[,)]''')
    used = {m.group(2) for f in CONSOLE.rglob("*") if f.suffix in (".py", ".html") for m in pattern.finditer(f.read_text())}
    from babel.messages.pofile import read_po

    for lang in ("zh_Hans", "ru"):
        with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
            catalog = read_po(fh)
        missing = sorted(m for m in used if m and not m.startswith("%(") and not (catalog.get(m) and catalog.get(m).string))
        assert missing == [], (lang, missing)


def test_pages_follow_the_language(client):
    c = client("boss", **{"accept-language": "ru-RU"})
    assert "Клиенты" in c.get("/console/customers").text
    token = csrf_of(c.get("/console/").text)
    c.post("/console/language", data={"csrf": token, "language": "zh_Hans", "next": "/console/"})
    assert "客户" in c.get("/console/customers").text  # stored on the user, wins over the header


class Plugin:
    """A console plugin as a second engineer would write one."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "card.html").write_text("<p class='x-card'>{{ n }} open deals</p>")
        (tmp / "section.html").write_text("<p class='x-section'>score {{ score }}</p>")
        (tmp / "page.html").write_text('{% extends "layout.html" %}{% block content %}<h1>{{ title }}</h1>{% endblock %}')
        self.tmp = tmp

    @hookimpl
    def crm_console_register(self, register):
        register(NavEntry("Deals", "/deals", "customer.read", order=20))
        register(ConsoleTemplates(self.tmp))
        register(ConsolePage("/deals", lambda view: view.render("demo/page.html", title="Deal board")))
        register(ConsolePage("/boom", lambda view: 1 / 0))

    @hookimpl
    def crm_console_home_cards(self, uow, user):
        return [HomeCard("Deals", template="demo/card.html", context={"n": 3}), HomeCard("Empty card")]

    @hookimpl
    def crm_console_customer_sections(self, uow, customer, profile):
        if customer.external_ref == "SIB":
            raise RuntimeError("scoring service down")
        return ConsoleSection("Score", "demo/section.html", {"score": len(profile["contacts"])})


def test_plugin_contributions_and_failures_are_contained(make_crm, console_crm, tmp_path, client):
    console_crm.hooks.register(describe("demo", Plugin(tmp_path)))
    c = client("boss")
    home = c.get("/console/").text
    assert '<a href="/console/deals">Deals</a>' in home and "3 open deals" in home and "Empty card" in home
    assert "Deal board" in c.get("/console/deals").text
    boom = c.get("/console/boom")
    assert boom.status_code == 500 and "Something went wrong on our side" in boom.text and "ZeroDivision" not in boom.text
    refs = ids(console_crm)
    assert "score 0" in c.get(f"/console/customers/{refs['ALP']}").text
    sib = c.get(f"/console/customers/{refs['SIB']}")
    assert sib.status_code == 200 and "Plugin demo failed: RuntimeError: scoring service down" in sib.text
    assert "Сибирские окна" in sib.text  # the rest of the page is drawn


def test_a_disabled_plugin_contributes_nothing(console_crm, tmp_path, client):
    from crmcore.console.extensions import active_plugins

    info = describe("demo", Plugin(tmp_path), source="entry_point")  # as if installed, enabled, then disabled
    console_crm.hooks.register(info)
    c = client("boss")
    from sqlalchemy.orm import Session

    with Session(console_crm.engine) as db:
        assert "demo" not in active_plugins(console_crm, db)
    home = c.get("/console/").text
    assert "/console/deals" not in home and "open deals" not in home
    assert c.get("/console/deals").status_code == 404
    console_crm.plugin_state("demo", True)
    assert "3 open deals" in c.get("/console/").text
