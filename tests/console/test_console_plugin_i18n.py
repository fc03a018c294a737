"""Every message the plugins' console pages use has a Simplified Chinese and a Russian
translation in the plugin's own catalogue, and the pages follow the user's language."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.console.conftest import csrf_of

ROOT = Path(__file__).resolve().parents[2] / "plugins"
PLUGINS = ("sales_automation", "credit", "marketing", "value_analysis", "service")
USED = re.compile(r'''\b_\(\s*(["'])((?:\\.|(?!\1).)*?)\1\s*[,)]''')


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_console_message_is_translated(plugin):
    pkg = ROOT / plugin / f"crm_{plugin}"
    files = [f for f in pkg.rglob("*") if f.suffix == ".html" or (f.suffix == ".py" and f.name.startswith("console"))]
    used = {m.group(2) for f in files for m in USED.finditer(f.read_text(encoding="utf-8"))}
    assert used
    for lang in ("zh_Hans", "ru"):
        with (pkg / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
            catalog = read_po(fh)
        missing = sorted(m for m in used if not (catalog.get(m) and catalog.get(m).string))
        assert missing == [], (plugin, lang, missing)


@pytest.mark.parametrize(("lang", "words"), [("ru", ("Воронка", "Старение дебиторской задолженности", "Сегменты", "Очередь заявок")),
                                             ("zh_Hans", ("销售管道", "应收账龄", "客户群", "工单队列"))])
def test_plugin_pages_follow_the_language(pclient, lang, words):
    c = pclient("boss")
    c.post("/console/language", data={"csrf": csrf_of(c.get("/console/").text), "language": lang, "next": "/console/"})
    for path, word in zip(("/console/sales", "/console/credit/ageing", "/console/marketing/segments",
                           "/console/service/tickets"), words, strict=True):
        r = c.get(path)
        assert r.status_code == 200 and word in r.text, (path, word)
