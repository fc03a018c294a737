"""How the plugin meets the core and other plugins: targeting, the 360° view, merges, discovery."""
from __future__ import annotations

from importlib.metadata import entry_points

import crm_value_analysis.plugin as PLUGIN
import pytest
from crm_value_analysis import services
from crm_value_analysis.models import CustomerValue
from crm_value_analysis.services import NoRunYet, select_customers
from crm_value_analysis.testing import Base, d
from sqlalchemy import select

from crmcore import CRM, InvalidInput
from crmcore.models import Customer


@pytest.fixture
def analysed(vcrm: CRM, base: Base) -> dict[str, int]:
    ids = {}
    for i in range(100):
        ids[f"c{i}"] = c = base.customer(f"C{i}")
        base.buy(c, 10 + i, 10 + i)  # C99: the biggest, C0 the oldest purchase
    ids["never"] = base.customer("Never")
    with vcrm.unit_of_work() as uow:
        services.run_analysis(uow, as_of=d(120))
    return ids


def test_select_customers_by_tier_segment_clv_and_lifecycle(vcrm: CRM, analysed: dict[str, int]) -> None:
    with vcrm.unit_of_work() as uow:
        assert select_customers(uow, tiers=["vip"]) == [analysed["c99"]]
        assert select_customers(uow, tiers="key") == [analysed[f"c{i}"] for i in (95, 96, 97, 98)]
        assert select_customers(uow, segments=["no_purchases"]) == [analysed["never"]]
        top = select_customers(uow, clv="deterministic", min_clv=50)
        rows = {r.customer_id: r for r in uow.session.scalars(select(CustomerValue))}
        assert top and all(rows[c].clv_deterministic >= 50 for c in top)
        assert len(top) < 100
        assert select_customers(uow, tiers=["vip", "key"], segments=["champions"]) == \
            sorted(c for c in select_customers(uow, tiers=["vip", "key"]) if rows[c].segment == "champions")
        # one purchase: still exploring for 90 days, then declining (the trial never led to a second purchase)
        assert select_customers(uow, lifecycle=["exploration"]) == sorted(analysed[f"c{i}"] for i in range(20, 100))
        assert select_customers(uow, lifecycle=["decline"]) == sorted(analysed[f"c{i}"] for i in range(20))
        assert select_customers(uow, max_p_alive=0.5) == []  # no model on 1-purchase customers: NULL never matches
        assert select_customers(uow, min_loyalty=0) == sorted(analysed[f"c{i}"] for i in range(100))
        assert select_customers(uow, dependency=["none"]) == sorted(analysed.values())


def test_select_customers_skips_archived_and_checks_names(vcrm: CRM, analysed: dict[str, int]) -> None:
    with vcrm.unit_of_work() as uow:
        uow.customers.archive(analysed["c99"])
    with vcrm.unit_of_work() as uow:
        assert select_customers(uow, tiers=["vip"]) == []
        with pytest.raises(InvalidInput, match="unknown \\['gold'\\]"):
            select_customers(uow, tiers=["gold"])
        with pytest.raises(InvalidInput, match="clv"):
            select_customers(uow, clv="magic", min_clv=1)


def test_select_customers_needs_a_run(vcrm: CRM) -> None:
    with pytest.raises(NoRunYet), vcrm.unit_of_work() as uow:
        select_customers(uow, tiers=["vip"])


def test_profile_section_only_with_a_run(vcrm: CRM, base: Base) -> None:
    c = base.customer("A")
    base.buy(c, 1, "10")
    with vcrm.unit_of_work() as uow:
        assert services.profile_section(uow, uow.customers.get(c)) is None
        services.run_analysis(uow, as_of=d(5))
    late = base.customer("Late")
    with vcrm.unit_of_work() as uow:
        section = services.profile_section(uow, uow.customers.get(c))
        assert section is not None and section.title == "Customer value"
        assert section.fields["tier"] == "small" and section.fields["dependency"] == "mono_client"
        assert section.fields["as_of"] == d(5).isoformat()
        assert services.profile_section(uow, uow.customers.get(late)) is None  # not in the run yet


def test_merge_repoints_or_drops_snapshot_rows(vcrm: CRM, base: Base) -> None:
    a, b = base.customer("A"), base.customer("B")
    base.buy(a, 1, "10")
    with vcrm.unit_of_work() as uow:
        first = services.run_analysis(uow, as_of=d(2)).run.id  # A, B
    late = base.customer("Late")
    base.buy(late, 3, "30")
    with vcrm.unit_of_work() as uow:
        second = services.run_analysis(uow, as_of=d(4)).run.id  # A, B, Late

    def owners() -> list[tuple[int, int]]:
        with vcrm.unit_of_work() as uow:
            return sorted((r.run_id, r.customer_id) for r in uow.session.scalars(select(CustomerValue)))

    with vcrm.unit_of_work() as uow:  # A has a row in every run of Late: Late's rows are dropped
        assert uow.customers.merge(late, a)["value_analysis_customer_values"] == 0
    assert owners() == sorted([(first, a), (first, b), (second, a), (second, b)])

    new = base.customer("New")  # in no run yet: B's rows move over
    with vcrm.unit_of_work() as uow:
        assert uow.customers.merge(b, new)["value_analysis_customer_values"] == 2
    assert owners() == sorted([(first, a), (first, new), (second, a), (second, new)])
    with vcrm.unit_of_work() as uow:
        assert uow.session.get(Customer, b).merged_into_id == new


def test_plugin_is_installed_under_its_entry_point() -> None:
    eps = {ep.name: ep for ep in entry_points(group="crmcore.plugins")}
    assert eps["value_analysis"].value == "crm_value_analysis.plugin"
    assert eps["value_analysis"].load() is PLUGIN
    assert PLUGIN.requires == () and PLUGIN.__doc__.startswith("Customer value analysis")


def test_enable_through_the_cli(vcli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Enabled by id like any installed plugin: its commands then appear without code registration."""
    from click.testing import CliRunner

    from crmcore.cli import build_cli

    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    runner = CliRunner()
    assert runner.invoke(build_cli(), ["--database", db, "init"]).exit_code == 0
    res = runner.invoke(build_cli(), ["--database", db, "plugins", "enable", "value_analysis"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(build_cli(), ["--database", db, "value", "runs", "--json"])
    assert res.exit_code == 0 and res.stdout.strip() == "[]"
