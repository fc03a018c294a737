"""The 360° timeline says what happened in the reader's language: an interaction's channel and kind
are the words of the interaction form, not the stored codes."""
from __future__ import annotations

import re

from crmcore.schemas import InteractionCreate
from tests.console.conftest import csrf_of

ROW = re.compile(r"<tr><td class=\"nowrap\">[^<]*</td>\s*<td>([^<]*)</td>\s*<td>Called about ovens</td>")


def test_channel_and_kind_are_translated_words(client, console_crm):
    with console_crm.unit_of_work("boss") as uow:
        cid = uow.customers.visible("ALP").id
        uow.interactions.log(cid, InteractionCreate(channel="phone", kind="sale", subject="Called about ovens"))
    c = client("boss")
    m = ROW.search(c.get(f"/console/customers/{cid}").text)
    assert m and m.group(1) == "Phone · Sale"
    c.post("/console/language", data={"csrf": csrf_of(c.get("/console/").text), "language": "ru", "next": "/console/"})
    m = ROW.search(c.get(f"/console/customers/{cid}").text)
    assert m and m.group(1) == "Телефон · Продажа"
    part = c.get(f"/console/customers/{cid}?partial=timeline&kind=sale", headers={"HX-Request": "true"}).text
    assert "Телефон · Продажа" in part and "<html" not in part  # the htmx filter's partial too


def _ledger_customer(crm):
    import datetime as dt
    from decimal import Decimal

    from crmcore.schemas import TransactionCreate

    with crm.unit_of_work("boss") as uow:
        cid = uow.customers.visible("ALP").id
        uow.interactions.log(cid, InteractionCreate(channel="email", kind="sale", subject="Sent the price list"))
        uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=Decimal("12500.5"), currency="EUR", reference="INV-9",
                                                 description="ovens", occurred_at=dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)))
        uow.accounts.post(cid, TransactionCreate(kind="credit_note", amount=Decimal("500"), currency="EUR", reference="CN-9",
                                                 occurred_at=dt.datetime(2024, 3, 2, 10, tzinfo=dt.UTC)))
    return cid


LEDGER_ROW = re.compile(r"<tr><td class=\"nowrap\">[^<]*</td>\s*<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>")


def test_ledger_rows_name_the_kind_and_format_the_money(client, console_crm):
    """An invoice on the timeline reads "Invoice · €12,500.50 · ovens" in the reader's words and
    locale, comes from "Ledger", and the filter has an entry for the ledger alone."""
    cid = _ledger_customer(console_crm)
    c = client("boss")
    rows = {m.group(3): m.groups() for m in LEDGER_ROW.finditer(c.get(f"/console/customers/{cid}").text)}
    assert rows["INV-9"] == ("Invoice", "€12,500.50 · ovens", "INV-9", "Ledger")
    assert rows["CN-9"] == ("Credit note", "€500.00", "CN-9", "Ledger")
    page = c.get(f"/console/customers/{cid}").text
    assert '<option value="ledger">Invoices and payments</option>' in page
    part = c.get(f"/console/customers/{cid}?partial=timeline&kind=ledger", headers={"HX-Request": "true"}).text
    assert "INV-9" in part and "CN-9" in part and "Sent the price list" not in part
    c.post("/console/language", data={"csrf": csrf_of(c.get("/console/").text), "language": "ru", "next": "/console/"})
    rows = {m.group(3): m.groups() for m in LEDGER_ROW.finditer(c.get(f"/console/customers/{cid}").text)}
    assert rows["INV-9"][0] == "Счёт" and rows["INV-9"][3] == "Расчёты"
    assert re.fullmatch(r"12\s500,50\s€ · ovens", rows["INV-9"][1]), rows["INV-9"]


def test_machine_made_references_are_not_shown(client, console_crm):
    """A record created without a reference gets ``u-`` and 16 hex digits (for export and
    import); the timeline, the profile and the customer list show nothing in its place."""
    with console_crm.unit_of_work("boss") as uow:
        from crmcore.schemas import CustomerCreate

        cid = uow.customers.create(CustomerCreate(name="Nameless Bakery", owner="anna")).id
        uow.interactions.log(cid, InteractionCreate(channel="phone", kind="sale", subject="First call"))
        made = uow.customers.visible(cid).external_ref
    assert made and made.startswith("u-")
    c = client("boss")
    for path in (f"/console/customers/{cid}", "/console/customers?search=Nameless"):
        page = c.get(path).text
        assert "First call" in page or "Nameless Bakery" in page
        assert not re.search(r"u-[0-9a-f]{16}", page), path


def test_dates_and_times_are_for_the_locale_without_seconds():
    import datetime as dt

    from crmcore.console.i18n import Formatter

    at = dt.datetime(2026, 12, 14, 9, 5, 33, tzinfo=dt.UTC)
    assert Formatter("en").date(at) == "14 Dec 2026, 09:05"
    assert re.fullmatch(r"14 дек\. 2026\sг\., 09:05", Formatter("ru").date(at))
    assert Formatter("zh_Hans").date(at) == "2026年12月14日 09:05"
    assert Formatter("en").date("2026-12-14T09:05:33+00:00") == "14 Dec 2026, 09:05"
    assert Formatter("en").date("2024-06-30") == "30 Jun 2024"  # a date stays a date
    assert Formatter("en").date(dt.datetime(2026, 12, 14, 9, 5, 33, tzinfo=dt.timezone(dt.timedelta(hours=3)))) == \
        "14 Dec 2026, 06:05"  # shown in UTC, like every date of the console


def test_an_interaction_names_the_contact_person(client, console_crm):
    """The log form offers the customer's contacts; the timeline names the person spoken with,
    and another customer's contact is refused next to the field, the input kept."""
    from crmcore.schemas import ContactCreate

    with console_crm.unit_of_work("boss") as uow:
        cid, other = uow.customers.visible("ALP").id, uow.customers.visible("SIB").id
        jana = uow.contacts.add(cid, ContactCreate(name="Jana Novak")).id
        ivan = uow.contacts.add(other, ContactCreate(name="Иван Петров")).id
    c = client("boss")
    page = c.get(f"/console/customers/{cid}").text
    assert f'<option value="{jana}">Jana Novak</option>' in page
    r = c.post(f"/console/customers/{cid}/interactions", follow_redirects=False,
               data={"csrf": csrf_of(page), "channel": "visit", "direction": "outbound", "kind": "sale",
                     "subject": "Showroom tour", "contact": str(jana)})
    assert r.status_code == 303, r.text
    assert "Showroom tour · Contact: Jana Novak" in c.get(f"/console/customers/{cid}").text
    r = c.post(f"/console/customers/{cid}/interactions", data={"csrf": csrf_of(page), "channel": "phone",
               "direction": "inbound", "kind": "sale", "subject": "Wrong person", "contact": str(ivan)})
    assert r.status_code == 422 and 'id="e-contact"' in r.text and 'value="Wrong person"' in r.text
    with console_crm.unit_of_work("boss", read_only=True) as uow:
        assert [x.subject for x in uow.interactions.list(cid)] == ["Showroom tour"]
