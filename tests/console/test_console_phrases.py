"""The plugins' machine-made English lines (timeline summaries, 360° values written for the CLI)
show in the reader's language on the 360° page: the sales referrals line, won and lost deals,
the service's ticket lines; a line no phrase matches is shown as it is; a disabled plugin's
phrases are not used; a plugin whose phrase has a bad pattern is left out of the console."""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from crm_sales_automation import services as sales
from crm_sales_automation.schemas import OpportunityCreate
from crm_service import tickets
from crm_service.schemas import TicketOpen

from crmcore.console import ConsolePhrase
from crmcore.console.extensions import say
from crmcore.console.i18n import Formatter, add_catalog_dir
from crmcore.schemas import CustomerCreate
from tests.console.conftest import csrf_of
from tests.console.plugkit import ids, text_of

#: English a Chinese or Russian reader must not see on the 360° page of these customers
ENGLISH = re.compile(r"\b(leads|customers\)|opened:|satisfaction|return visit|days overdue|to campaign)\b")


def data(crm) -> dict[str, int]:
    refs = ids(crm)
    with crm.unit_of_work("boss") as uow:
        new = uow.customers.create(CustomerCreate(name="Referred Ltd", external_ref="REF", owner="anna")).id
        sales.set_referral(uow, new, refs["ALP"])
        won = sales.add_opportunity(uow, refs["ALP"], OpportunityCreate(title="Ovens", amount=Decimal("12500"), currency="EUR"))
        sales.win(uow, won.id)
        lost = sales.add_opportunity(uow, refs["ALP"], OpportunityCreate(title="Fridges", amount=Decimal("900"), currency="EUR"))
        sales.lose(uow, lost.id, "price")
        tickets.open_ticket(uow, refs["ALP"], TicketOpen(subject="Oven door broken", priority="urgent"))
    return refs


def speak(client, lang: str) -> None:
    client.post("/console/language", data={"csrf": csrf_of(client.get("/console/").text), "language": lang, "next": "/console/"})


def test_plugin_lines_in_chinese_and_russian(pclient, pcrm):
    alp = data(pcrm)["ALP"]
    boss = pclient("boss")
    english = text_of(boss.get(f"/console/customers/{alp}").text)
    assert "1 (0 leads, 1 customers)" in english and "Ticket 1 opened: Oven door broken" in english
    expected = {"zh_Hans": ("1（线索 0 条，客户 1 位）", "工单 1 已创建：Oven door broken", "Ovens：€12,500.00", "Fridges：price"),
                "ru": ("1 (лидов: 0, клиентов: 1)", "Заявка 1 открыта: Oven door broken", "Ovens: 12 500,00 €", "Fridges: price")}
    for lang, lines in expected.items():
        speak(boss, lang)
        shown = text_of(boss.get(f"/console/customers/{alp}").text)
        for line in lines:
            assert line.replace("\u00a0", " ") in shown.replace("\u00a0", " ").replace("\u202f", " "), (lang, line)
        assert ENGLISH.search(shown) is None, (lang, ENGLISH.search(shown))


def test_a_line_no_phrase_matches_is_shown_as_it_is():
    phrases = [("sales_automation", p, re.compile(p.pattern)) for p in (
        ConsolePhrase(r"(?P<n>\d+) \((?P<leads>\d+) leads, (?P<customers>\d+) customers\)",
                      "%(n)s (%(leads)s leads, %(customers)s customers)"),
        ConsolePhrase(r"(?P<title_text>.*): (?P<amount>-?[\d,]+\.\d\d [A-Z]{3})", "%(title_text)s: %(amount)s", kind="opportunity won"))]
    import crm_sales_automation

    add_catalog_dir(Path(crm_sales_automation.__file__).parent / "locale")
    ru = Formatter("ru")
    shown = say(ru, phrases, "1200 (3 leads, 1197 customers)", plugins=["sales_automation"])
    assert shown is not None and shown.replace("\u00a0", " ") == "1 200 (лидов: 3, клиентов: 1 197)"
    assert say(ru, phrases, "something else", plugins=["sales_automation"]) is None
    assert say(ru, phrases, "1 (0 leads, 1 customers)", plugins=["marketing"]) is None  # not that plugin's line
    # a phrase for one kind is not used for another; a _text group is shown as written
    assert say(ru, phrases, "1,000 ovens: 12,500.00 EUR", plugins=["sales_automation"], kind="opportunity lost") is None
    won = say(ru, phrases, "1,000 ovens: 12,500.00 EUR", plugins=["sales_automation"], kind="opportunity won")
    assert won is not None and won.startswith("1,000 ovens: 12") and won.endswith("€")


def test_a_bad_pattern_leaves_the_plugin_out(make_crm):
    import types

    from crmcore import hookimpl
    from crmcore.console.extensions import collect

    @hookimpl
    def crm_console_register(register):
        register(ConsolePhrase("(unclosed", "x"))

    plugin = types.ModuleType("crm_badphrase")
    plugin.crm_console_register = crm_console_register  # type: ignore[attr-defined]
    reg = collect(make_crm(plugins=[plugin]))
    assert len(reg.errors) == 1 and reg.errors[0].message.startswith("error: missing )"), reg.errors
    assert reg.phrases == []
