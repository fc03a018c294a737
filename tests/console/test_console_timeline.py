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
