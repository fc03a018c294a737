"""``crmcore.testing.assert_plugin_layout``: the shipped plugins follow the standard layout, and a
plugin that departs from it gets one line per problem."""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest
from sqlalchemy import Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crmcore import MigrationBranch
from crmcore.testing import assert_plugin_layout, plugin_layout_problems
from crmcore.testing_layout import _table_problems

SHIPPED = ["credit", "marketing", "sales_automation", "service", "value_analysis"]


@pytest.mark.parametrize("plugin_id", SHIPPED)
def test_shipped_plugins_follow_the_layout(plugin_id: str) -> None:
    assert_plugin_layout(importlib.import_module(f"crm_{plugin_id}.plugin"), plugin_id)


REVISION = '''
revision = "{rev}"
down_revision = None
branch_labels = {labels}
depends_on = {depends}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, body: str,
                revision: str | None = None) -> types.ModuleType:
    """A plugin package on disk (``<package>/plugin.py`` and its versions folder), imported."""
    root = tmp_path / package
    (root / "versions").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "plugin.py").write_text(body)
    if revision:
        (root / "versions" / "r1.py").write_text(revision)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, f"{package}.plugin", raising=False)
    return importlib.import_module(f"{package}.plugin")


def test_a_good_small_plugin_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = ("from pathlib import Path\nfrom crmcore import MigrationBranch\nPLUGIN_ID = 'lay'\n"
            "MIGRATIONS = MigrationBranch(label=PLUGIN_ID, versions=Path(__file__).parent / 'versions')\n")
    module = make_plugin(tmp_path, monkeypatch, "crm_lay", body,
                         REVISION.format(rev="lay_0001", labels="('lay',)", depends="'0001_core'"))
    assert plugin_layout_problems(module, "lay") == []


def test_every_departure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = ("from pathlib import Path\nimport click\nfrom crmcore import MigrationBranch, PluginSettings\n"
            "PLUGIN_ID = 'other'\n"
            "MIGRATIONS = MigrationBranch(label='odd', versions=Path(__file__).parent / 'versions')\n"
            "class OddSettings(PluginSettings):\n    pass\nSETTINGS = OddSettings\n"
            "@click.command('odd')\ndef odd() -> None:\n    pass\nCOMMANDS = odd\n")
    module = make_plugin(tmp_path, monkeypatch, "crm_odd", body,
                         REVISION.format(rev="odd_0001", labels="('odd',)", depends="None"))
    assert plugin_layout_problems(module, "odd") == [
        "PLUGIN_ID 'other' differs from the entry point name 'odd'",
        "the package is 'crm_odd', not crm_other",
        "migration branch label 'odd' differs from PLUGIN_ID 'other'",
        "revision odd_0001 starts the branch but does not carry branch_labels = ('odd',) and depend on a core "
        "revision (depends_on = '0001_core')",
        "settings OddSettings live in crm_odd.plugin, not crm_odd.settings or .schemas",
        "command 'odd' lives in crm_odd.plugin, not crm_odd.cli",
    ]
    with pytest.raises(AssertionError, match="departs from the standard layout:\n- PLUGIN_ID 'other'"):
        assert_plugin_layout(module, "odd")


def test_a_missing_id_or_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = make_plugin(tmp_path, monkeypatch, "crm_noid", "PLUGIN_ID = 'Bad Id'\n")
    assert plugin_layout_problems(module) == [
        "the plugin module sets no valid PLUGIN_ID (got 'Bad Id'): lower case letters, digits, single _"]
    body = ("from pathlib import Path\nfrom crmcore import MigrationBranch\nPLUGIN_ID = 'gone'\n"
            "MIGRATIONS = MigrationBranch(label='gone', versions=Path('/nonexistent/versions'))\n")
    module = make_plugin(tmp_path, monkeypatch, "crm_gone", body)
    assert plugin_layout_problems(module) == ["migration folder /nonexistent/versions does not exist"]


def test_tables_outside_the_prefix() -> None:
    class Base(DeclarativeBase):
        pass

    class Good(Base):
        __tablename__ = "lay_things"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    class Bad(Base):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    Good.__module__ = Bad.__module__ = "crm_lay.models"  # as if defined in the plugin's models.py

    branch = MigrationBranch(label="lay", versions=Path("versions"))
    assert _table_problems("crm_lay", [branch], Base.registry) == ["table things is outside the plugin's prefix lay_"]
    assert _table_problems("crm_lay", [], Base.registry) == [
        "table lay_things is mapped but the plugin declares no migration branch",
        "table things is mapped but the plugin declares no migration branch"]
    assert _table_problems("crm_other", [], Base.registry) == []
