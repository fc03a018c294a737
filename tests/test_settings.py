"""Plugin settings: defaults < crm.toml [plugin] < CRM_<PLUGIN>__<KEY>, validated when the CRM opens."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from crmcore import CRM, ConfigError, NotFound, PluginError, PluginSettings, hookimpl


class Limits(BaseModel):
    max_days: int = Field(default=30, ge=1)
    strict: bool = False


class CreditLikeSettings(PluginSettings):
    check_point: Literal["win", "invoice", "both"] = "invoice"
    overshoot_percent: Decimal = Field(default=Decimal(0), ge=0)
    channels: list[str] = Field(default_factory=lambda: ["email"])
    limits: Limits = Field(default_factory=Limits)


class SettingsPlugin:
    """Declares settings, as a plugin would."""

    PLUGIN_ID = "credity"

    @staticmethod
    @hookimpl
    def crm_register_settings(register: Any) -> None:
        register(CreditLikeSettings)


class BadRegistration:
    PLUGIN_ID = "badreg"

    @staticmethod
    @hookimpl
    def crm_register_settings(register: Any) -> None:
        register({"not": "a class"})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.upper().startswith("CRM_CREDITY__"):
            monkeypatch.delenv(k)


def test_defaults_config_then_environment(make_crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    crm = make_crm(plugins=[SettingsPlugin])
    s = crm.settings("credity")
    assert isinstance(s, CreditLikeSettings) and s.check_point == "invoice" and s.overshoot_percent == Decimal(0)

    crm = make_crm(plugins=[SettingsPlugin], config={"credity": {"check_point": "both", "overshoot_percent": "2.5"}})
    assert crm.settings("credity").check_point == "both" and crm.settings("credity").overshoot_percent == Decimal("2.5")

    monkeypatch.setenv("CRM_CREDITY__CHECK_POINT", "win")
    monkeypatch.setenv("crm_credity__limits__max_days", "7")  # case does not matter; nested keys with __
    monkeypatch.setenv("CRM_CREDITY__CHANNELS", '["sms", "email"]')
    crm = make_crm(plugins=[SettingsPlugin], config={"credity": {"check_point": "both", "limits": {"strict": True}}})
    s = crm.settings("credity")
    assert s.check_point == "win"  # the environment beats crm.toml
    assert s.limits == Limits(max_days=7, strict=True)  # nested: env and crm.toml merged
    assert s.channels == ["sms", "email"]
    sources = {r["key"]: r["source"] for r in crm.plugin_settings.rows()}
    assert sources == {"check_point": "env CRM_CREDITY__CHECK_POINT over crm.toml [credity]",
                       "overshoot_percent": "default", "channels": "env CRM_CREDITY__CHANNELS",
                       "limits": "env crm_credity__limits__max_days over crm.toml [credity]"}


def test_decimal_from_environment_is_exact(make_crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_CREDITY__OVERSHOOT_PERCENT", "0.1")
    assert make_crm(plugins=[SettingsPlugin]).settings("credity").overshoot_percent == Decimal("0.1")


def test_direct_construction_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_POINT", "win")
    monkeypatch.setenv("CRM_CREDITY__CHECK_POINT", "win")
    assert CreditLikeSettings().check_point == "invoice"
    assert CreditLikeSettings(check_point="both").check_point == "both"


@pytest.mark.parametrize("config, env, expected", [
    ({"credity": {"check_point": "often"}}, {}, "crm.toml [credity]: check_point: Input should be 'win', 'invoice' or 'both'"),
    ({"credity": {"overshoot_percent": -1}}, {}, "crm.toml [credity]: overshoot_percent: Input should be greater than or equal to 0"),
    ({"credity": {"check_pont": "win"}}, {}, "crm.toml [credity]: check_pont: Extra inputs are not permitted"),
    ({"credity": {"limits": {"max_days": 0}}}, {}, "crm.toml [credity]: limits.max_days: Input should be greater than or equal to 1"),
    ({}, {"CRM_CREDITY__OVERSHOOT_PERCENT": "lots"}, "env CRM_CREDITY__OVERSHOOT_PERCENT: overshoot_percent: Input should be a valid decimal"),
    ({}, {"CRM_CREDITY__LIMITS__MAX_DAYS": "-3"}, "env CRM_CREDITY__LIMITS__MAX_DAYS: limits.max_days: Input should be greater than or equal to 1"),
    ({}, {"CRM_CREDITY__CHECKPOINT": "win"}, "no setting for environment variable CRM_CREDITY__CHECKPOINT"),
    ({}, {"CRM_CREDITY__CHANNELS": "[not json"}, 'error parsing value for field "channels" from source "EnvSettingsSource"'),
    ({"credity": "yes"}, {}, "crm.toml [credity]: must be a table"),
])
def test_bad_settings_fail_at_open_with_one_line(make_crm: Any, monkeypatch: pytest.MonkeyPatch,
                                                 config: dict[str, Any], env: dict[str, str], expected: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        make_crm(plugins=[SettingsPlugin], config=config)
    message = str(err.value)
    assert expected in message and "credity" in message and "\n" not in message
    assert err.value.exit_code == 2


def test_unknown_plugin_and_bad_registration(make_crm: Any) -> None:
    crm = make_crm(plugins=[SettingsPlugin])
    with pytest.raises(NotFound, match="settings of plugin 'nope' not found"):
        crm.settings("nope")
    with pytest.raises(PluginError, match="badreg.*PluginSettings subclass"):
        make_crm(plugins=[BadRegistration])


def test_value_analysis_is_on_the_core_settings(make_crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_value_analysis import plugin as value_plugin
    from crm_value_analysis.schemas import ValueSettings

    monkeypatch.setenv("CRM_VALUE_ANALYSIS__MARGIN", "0.5")
    crm = make_crm(plugins=[value_plugin], config={"value_analysis": {"time_unit": "weeks", "margin": 0.2}})
    s = crm.settings("value_analysis")
    assert isinstance(s, ValueSettings) and (s.time_unit, s.margin) == ("weeks", 0.5)
    monkeypatch.setenv("CRM_VALUE_ANALYSIS__MARGIN", "2")
    with pytest.raises(ConfigError, match=r"plugin 'value_analysis': env CRM_VALUE_ANALYSIS__MARGIN: margin: Input should be less than"):
        make_crm(plugins=[value_plugin])


# -- crm config show ------------------------------------------------------------------------------

def test_config_show_json_and_table(cli: Any, make_crm: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    make_crm(plugins=[SettingsPlugin])  # the cli fixture uses the same plugins
    (tmp_path / "crm.toml").write_text('[credity]\ncheck_point = "both"\n', encoding="utf-8")
    monkeypatch.setenv("CRM_CREDITY__OVERSHOOT_PERCENT", "1.5")
    res = cli("config", "show", "--json")
    assert res.exit_code == 0, res.output
    rows = {(r["plugin"], r["key"]): (r["value"], r["source"]) for r in json.loads(res.stdout)}
    assert rows[("credity", "check_point")] == ("both", "crm.toml [credity]")
    assert rows[("credity", "overshoot_percent")] == ("1.5", "env CRM_CREDITY__OVERSHOOT_PERCENT")
    assert rows[("credity", "channels")] == (["email"], "default")
    assert rows[("core", "database")][1] == "--database"
    res = cli("config", "show")
    assert res.exit_code == 0 and "crm.toml [credity]" in res.stdout and "overshoot_percent" in res.stdout


def test_bad_setting_stops_every_command_with_exit_2(cli: Any, make_crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    make_crm(plugins=[SettingsPlugin])
    monkeypatch.setenv("CRM_CREDITY__CHECK_POINT", "sometimes")
    for args in (("config", "show"), ("customer", "list"), ("customer", "add", "Acme")):
        res = cli(*args)
        assert res.exit_code == 2
        assert res.stderr.strip().splitlines()[-1] == ("error: invalid setting of plugin 'credity': env CRM_CREDITY__CHECK_POINT: "
                                                       "check_point: Input should be 'win', 'invoice' or 'both'")
    monkeypatch.delenv("CRM_CREDITY__CHECK_POINT")
    res = cli("customer", "list", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []  # nothing was written by the refused add


def test_settings_are_validated_once_per_open(make_crm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    crm: CRM = make_crm(plugins=[SettingsPlugin])
    monkeypatch.setenv("CRM_CREDITY__CHECK_POINT", "win")
    assert crm.settings("credity").check_point == "invoice"  # an open CRM keeps what it validated
