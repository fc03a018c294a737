"""Settings: crm.toml's [value_analysis] table, command-line overrides, and one clear error per mistake."""
from __future__ import annotations

import datetime as dt

import pytest
from crm_value_analysis import analytics
from crm_value_analysis.schemas import ValueSettings, load_settings, parse_date

from crmcore import ConfigError, InvalidInput


def test_defaults() -> None:
    s = load_settings({})
    assert [k.value for k in s.revenue_kinds] == ["invoice"] and [k.value for k in s.netting_kinds] == ["credit_note"]
    assert s.time_unit == "auto" and s.model == "auto" and s.churn_gap_factor == 2.0  # chosen from the data
    with pytest.raises(ValueError, match="chosen from the data"):
        _ = s.unit_days
    assert s.model_copy(update={"time_unit": "months"}).unit_days == pytest.approx(30.4375)
    assert s.pyramid == {"vip": 0.01, "key": 0.04, "normal": 0.15, "small": 0.80}
    assert s.tier_order() == ("vip", "key", "normal", "small", "inactive")
    assert s.segment_rules() == list(analytics.DEFAULT_SEGMENT_RULES)
    assert s.monthly_discount_rate == pytest.approx(1.1 ** (1 / 12) - 1)
    assert s.dependency.key == 0.10 and s.lifecycle.update_core


def test_config_then_overrides() -> None:
    config = {"value_analysis": {"time_unit": "weeks", "margin": 0.25, "loyalty_weights": {"satisfaction": 0.5}}}
    s = load_settings(config, {"margin": "0.4", "horizon_months": None})
    assert (s.time_unit, s.unit_days, s.margin, s.horizon_months) == ("weeks", 7.0, 0.4, 36)
    assert s.loyalty_weights["satisfaction"] == 0.5 and s.loyalty_weights["duration"] == 0.12  # merged with defaults


def test_settings_round_trip_through_json() -> None:
    s = load_settings({"value_analysis": {"segments": [{"name": "all", "r": [1, 5], "fm": [1, 5]}],
                                          "pyramid": {"a": 0.3, "b": 0.7}}})
    again = ValueSettings.model_validate(s.model_dump(mode="json"))
    assert again == s and list(again.pyramid) == ["a", "b"]


@pytest.mark.parametrize("table, message", [
    ({"discount_rate": -0.01}, "discount_rate"),
    ({"margin": 1.2}, "margin"),
    ({"time_unit": "years"}, "time_unit"),
    ({"churn_gap_factor": 0.5}, "churn_gap_factor"),
    ({"horizon_months": 0}, "horizon_months"),
    ({"retention": float("nan")}, "retention"),
    ({"revenue_kinds": []}, "at least one transaction kind"),
    ({"revenue_kinds": ["invoice"], "netting_kinds": ["invoice"]}, "cannot both count"),
    ({"revenue_kinds": ["sale"]}, "revenue_kinds"),
    ({"pyramid": {"vip": 0.5, "rest": 0.6}}, "sum to 1"),
    ({"pyramid": {"vip": 0.2, "inactive": 0.8}}, "reserved"),
    ({"segments": [{"name": "x", "r": [0, 5], "fm": [1, 5]}]}, "outside 1..5"),
    ({"loyalty_weights": {"karma": 1}}, "unknown loyalty components"),
    ({"loyalty_weights": dict.fromkeys(analytics.LOYALTY_COMPONENTS, 0)}, "at least one loyalty weight"),
    ({"dependency": {"key": 0.3, "critical": 0.2}}, "thresholds must satisfy"),
    ({"lifecycle": {"decline_trend": 0.5}}, "decline_trend must be below growth_trend"),
    ({"churn_treshold": 0.3}, "churn_treshold"),  # a typo is not silently ignored
])
def test_bad_config(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"crm.toml \[value_analysis\]") as err:
        load_settings({"value_analysis": table})
    assert message in str(err.value)


def test_config_table_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        load_settings({"value_analysis": "yes"})


def test_bad_override_names_the_option() -> None:
    with pytest.raises(InvalidInput, match="discount_rate: Input should be greater than or equal to 0") as err:
        load_settings({}, {"discount_rate": "-0.1"})
    assert err.value.errors == [("discount_rate", "Input should be greater than or equal to 0")]


def test_parse_date() -> None:
    assert parse_date("as_of", "2024-02-29") == dt.date(2024, 2, 29)
    assert parse_date("as_of", None) is None
    with pytest.raises(InvalidInput, match="as_of: '2024-02-30' is not a date"):
        parse_date("as_of", "2024-02-30")
