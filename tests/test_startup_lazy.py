"""Lazy declarations keep a command from importing what it does not use: ``COMMANDS = {"name":
"pkg.mod:group"}`` imports the group only when ``crm name ...`` runs, and ``SETTINGS =
"pkg.mod:Settings"`` imports the class at open only when something configures the plugin (else
when the settings are first read). What is configured is still refused at open."""
from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from crmcore import CRM, ConfigError
from crmcore.plugins import LazyCommand, plugin_command_names

TARGET = "crm_lazy_target"
TARGET_CODE = '''
import click
from crmcore import PluginSettings

class LazySettings(PluginSettings):
    count: int = 1

@click.group("lazy")
def group():
    """The lazy plugin's commands."""

@group.command("ping")
def ping():
    click.echo("pong")
'''


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "lazysite").mkdir()
    (tmp_path / "lazysite" / f"{TARGET}.py").write_text(TARGET_CODE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "lazysite"))
    sys.modules.pop(TARGET, None)
    yield TARGET
    sys.modules.pop(TARGET, None)


def lazy_plugin(**attrs: Any) -> types.ModuleType:
    mod = types.ModuleType("crm_lazy")
    mod.PLUGIN_ID = "lazy"  # type: ignore[attr-defined]
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


def test_a_declared_command_is_imported_only_when_it_runs(target: str, make_crm: Callable[..., CRM], cli) -> None:
    mod = lazy_plugin(COMMANDS={"lazy": f"{target}:group"})
    crm = make_crm(plugins=[mod])
    holder = click.Group()
    crm.hooks.register_commands(holder)
    assert isinstance(holder.commands["lazy"], LazyCommand)
    assert plugin_command_names(crm.hooks.plugins["lazy"]) == {"lazy"}
    assert target not in sys.modules  # named, listed and hinted at without the import
    res = cli("lazy", "ping", plugins=[mod])
    assert res.exit_code == 0, res.output
    assert res.stdout == "pong\n"
    assert target in sys.modules
    res = cli("lazy", "--help", plugins=[mod])
    assert res.exit_code == 0 and "ping" in res.stdout


def test_a_broken_declared_command_is_one_line_naming_the_plugin(make_crm: Callable[..., CRM], cli) -> None:
    mod = lazy_plugin(COMMANDS={"lazy": "crm_no_such_module_anywhere:group"})
    make_crm(plugins=[mod])
    res = cli("lazy", "ping", plugins=[mod])
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "lazy" in lines[0] and "crm_no_such_module_anywhere" in lines[0], res.output
    assert "Traceback" not in res.output


def test_lazy_settings_are_imported_when_first_read(target: str, make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[lazy_plugin(SETTINGS=f"{target}:LazySettings")])
    assert target not in sys.modules  # nothing configured: nothing to check at open
    assert crm.settings("lazy").count == 1
    assert target in sys.modules
    assert [r["key"] for r in crm.plugin_settings.rows()] == ["count"]


def test_configured_lazy_settings_are_still_checked_at_open(target: str, make_crm: Callable[..., CRM],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mod = lazy_plugin(SETTINGS=f"{target}:LazySettings")
    with pytest.raises(ConfigError, match=r"lazy.*count"):
        make_crm(plugins=[mod], config={"lazy": {"count": "many"}})
    crm = make_crm(plugins=[mod], config={"lazy": {"count": 3}})
    assert crm.plugin_settings.loaded["lazy"].values.count == 3  # type: ignore[attr-defined]
    monkeypatch.setenv("CRM_LAZY__COUNT", "many")
    with pytest.raises(ConfigError, match="CRM_LAZY__COUNT"):
        make_crm(plugins=[mod])
