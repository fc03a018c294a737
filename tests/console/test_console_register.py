"""``crmcore.console.console_register``: the one helper every shipped plugin's console.py uses to
register its navigation, templates, catalogue and pages, without loading the console in the CLI."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import crm_credit.console_pages as credit_pages
import pytest

from crmcore.console import ConsoleCatalog, ConsolePage, ConsoleTemplates, NavEntry, console_register
from crmcore.errors import CRMError

ROOT = Path(__file__).resolve().parents[2]


def registered(hook) -> list:
    out: list = []
    hook(register=out.append)
    return out


def test_the_credit_plugin_registers_its_nav_folders_and_every_route() -> None:
    from crm_credit import console

    items = registered(console.crm_console_register)
    assert items[0] == NavEntry("Credit", "/credit/ageing", "customer.read", order=30)
    here = Path(console.__file__).parent
    assert ConsoleTemplates(here / "templates") in items and ConsoleCatalog(here / "locale") in items
    pages = [i for i in items if isinstance(i, ConsolePage)]
    assert [(p.path, p.endpoint, p.methods) for p in pages] == [(r[0], r[1], r[2]) for r in credit_pages.ROUTES]
    assert {p.permission for p in pages} == {"customer.read"}


def test_every_shipped_plugin_uses_the_helper() -> None:
    for source in sorted(ROOT.glob("plugins/*/crm_*/console.py")):
        text = source.read_text(encoding="utf-8")
        assert "crm_console_register = console_register(__name__" in text, source
        assert "def crm_console_register" not in text, source


def _package(tmp_path: Path, name: str, routes: str, folders: tuple[str, ...]) -> None:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "console_pages.py").write_text(f"from crmcore.console import ConsolePage\n\ndef h(view):\n    return None\n\nROUTES = {routes}\n")
    for folder in folders:
        (pkg / folder).mkdir()


def test_a_page_object_keeps_its_permission_and_missing_folders_are_not_registered(tmp_path, monkeypatch) -> None:
    _package(tmp_path, "crm_regtest_a", '[("/a", h, ("GET", "POST")), ConsolePage("/b", h, permission="x.admin")]', ("templates",))
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("crm_regtest_a")
    items = registered(console_register("crm_regtest_a.console", permission="x.read"))
    assert items[0] == ConsoleTemplates(tmp_path / "crm_regtest_a" / "templates")
    assert not any(isinstance(i, ConsoleCatalog) for i in items)  # no locale folder
    pages = {p.path: p for p in items if isinstance(p, ConsolePage)}
    assert pages["/a"].permission == "x.read" and pages["/a"].methods == ("GET", "POST")
    assert pages["/b"].permission == "x.admin"


def test_a_wrong_call_is_one_clear_error() -> None:
    with pytest.raises(CRMError, match="is not a NavEntry"):
        console_register("crm_credit.console", ("Credit", "/credit"))  # type: ignore[arg-type]
    sys.modules["crm_regtest_fileless"] = types.ModuleType("crm_regtest_fileless")
    try:
        with pytest.raises(CRMError, match="call it from a module of an imported plugin package"):
            console_register("crm_regtest_fileless.console")
    finally:
        del sys.modules["crm_regtest_fileless"]


def test_a_pages_module_without_routes_is_left_out_of_the_console_not_a_failed_start(tmp_path, monkeypatch) -> None:
    from crmcore.console.extensions import collect

    _package(tmp_path, "crm_regtest_b", "None", ())
    (tmp_path / "crm_regtest_b" / "console_pages.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("crm_regtest_b")
    hook = console_register("crm_regtest_b.console", NavEntry("B", "/b"))
    crm = types.SimpleNamespace(hooks=types.SimpleNamespace(
        has_spec=lambda name: True,
        pm=types.SimpleNamespace(hook=types.SimpleNamespace(crm_console_register=types.SimpleNamespace(
            get_hookimpls=lambda: [types.SimpleNamespace(function=hook, plugin_name="regb", hookwrapper=False, wrapper=False)])))))
    reg = collect(crm)  # type: ignore[arg-type]
    assert reg.nav == [] and reg.pages == []
    assert [(e.plugin, e.hook) for e in reg.errors] == [("regb", "crm_console_register")]
    assert "ROUTES" in reg.errors[0].message


def test_importing_the_plugins_does_not_load_the_console() -> None:
    """The CLI imports every plugin's console.py (through plugin.py): Starlette and Jinja2 must wait."""
    code = ("import sys\nimport crm_credit.plugin, crm_marketing.plugin, crm_sales_automation.plugin, crm_service.plugin, "
            "crm_value_analysis.plugin\nprint(sorted(m for m in ('starlette', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
