"""A re-run of a stored date on the same data reuses that run's fit; any change to the inputs fits afresh."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crm_value_analysis import fit_cache, fitting, services
from crm_value_analysis.models import ValueRun
from crm_value_analysis.schemas import ValueSettings
from crm_value_analysis.testing import Base, bulk_load, d, simulate_purchase_log
from sqlalchemy import select

from crmcore import CRM


def run(crm: CRM, as_of: dt.date, **settings: Any) -> services.RunOutcome:
    with crm.unit_of_work("analyst") as uow:
        return services.run_analysis(uow, as_of=as_of, settings=ValueSettings(**settings) if settings else None)


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The model of every fit actually made."""
    made: list[str] = []
    real = fitting.fit_for_run

    def counted(rft: fitting.RFTInput, settings: ValueSettings) -> fitting.ModelFit:
        made.append(settings.model)
        return real(rft, settings)

    monkeypatch.setattr(fitting, "fit_for_run", counted)
    return made


@pytest.fixture
def fitted(vcrm: CRM) -> CRM:
    ci, days, amounts = simulate_purchase_log(400, r=0.24, alpha=4.41, a=0.79, b=2.43, p=6.25, q=3.74, v=15.44,
                                              end_day=300, seed=3)
    bulk_load(vcrm, ci, days, amounts, 400)
    return vcrm


def test_same_inputs_reuse_the_fit_and_give_the_same_numbers(fitted: CRM, fits: list[str]) -> None:
    first = run(fitted, d(300))
    assert first.summary["models"]["purchase"]["converged"] and len(fits) == 1
    again = run(fitted, d(300))
    assert len(fits) == 1  # nothing was fitted
    for key in ("models", "churn", "clv", "lifecycle", "tiers"):
        assert again.summary[key] == first.summary[key], key
    assert again.summary["rows_written"] == 0  # every stored estimate is the same
    run(fitted, d(301))
    assert len(fits) == 2  # another date: every customer is a day older


def test_other_inputs_or_settings_fit_afresh(fitted: CRM, base: Base, fits: list[str]) -> None:
    run(fitted, d(300))
    run(fitted, d(300), model="mbg_nbd")
    assert fits == ["auto", "mbg_nbd"]  # another model
    c = base.customer("Newcomer")
    base.buy(c, 299, "40")
    run(fitted, d(300), model="mbg_nbd")
    assert fits == ["auto", "mbg_nbd", "mbg_nbd"]  # another customer


def test_the_stored_fit_round_trips_and_is_keyed(fitted: CRM) -> None:
    run(fitted, d(300))
    with fitted.unit_of_work() as uow:
        blob = uow.session.scalar(select(ValueRun.model_cache))
    assert blob is not None
    key = fit_cache.json_key(blob)
    fit = fit_cache.decode(blob, key)
    assert isinstance(fit, fitting.ModelFit) and fit.purchase is not None and fit.purchase.converged
    assert fit_cache.encode(fit, key) == blob
    assert fit_cache.decode(blob, "another key") is None
    assert fit_cache.decode(b"not json", key) is None and fit_cache.decode(None, key) is None
    assert fit_cache.decode(blob.replace(b'"kind": "', b'"kind": "X'), key) is None  # an unknown class


def test_unreadable_fitting_code_never_reuses_a_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(self: object) -> bytes:
        raise OSError("frozen install")

    fit_cache._code_version.cache_clear()
    monkeypatch.setattr(fit_cache.Path, "read_bytes", unreadable)
    try:
        first = fit_cache._code_version()
        fit_cache._code_version.cache_clear()
        assert fit_cache._code_version() != first  # each process its own: no stored fit matches
    finally:
        fit_cache._code_version.cache_clear()
