"""Segment rules: parsing, one SQL query, the same answer as a plain Python reading of the rule, bad rules."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from crm_marketing import segments, services
from crm_marketing.testing import Shop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from crmcore import CRM, FieldDefinition, InvalidInput, hookimpl
from crmcore.db.types import utcnow

NOW = utcnow()


def ids(crm: CRM, rule: str) -> set[int]:
    with crm.unit_of_work("test", read_only=True) as uow:
        return set(uow.session.scalars(services.rule_query(uow, segments.parse(rule))))


@pytest.fixture
def base(shop: Shop) -> dict[str, int]:
    c = {
        "de_trade": shop.customer("DE1", country="DE", region="Bavaria", tags=["trade", "vip"], industry="Kitchens"),
        "de_retail": shop.customer("DE2", country="DE", region="Hesse", tags=["retail"]),
        "fr": shop.customer("FR1", country="FR", tags=["trade"]),
        "none": shop.customer("X1"),
    }
    shop.invoice(c["de_trade"], "1500.00", NOW - dt.timedelta(days=10), category="kitchens")
    shop.invoice(c["de_trade"], "200.00", NOW - dt.timedelta(days=400), category="tiles")
    shop.invoice(c["de_retail"], "50.00", NOW - dt.timedelta(days=100), category="tiles")
    shop.invoice(c["fr"], "5000.00", NOW - dt.timedelta(days=20), currency="EUR")
    return c


def test_rule_terms_on_both_engines(mcrm: CRM, base: dict[str, int]) -> None:
    assert ids(mcrm, 'country = "DE"') == {base["de_trade"], base["de_retail"]}
    assert ids(mcrm, 'tags has "trade"') == {base["de_trade"], base["fr"]}
    assert ids(mcrm, 'tags in ("vip", "retail")') == {base["de_trade"], base["de_retail"]}
    assert ids(mcrm, "spend(days=365) > 1000") == {base["de_trade"], base["fr"]}
    assert ids(mcrm, "spend() >= 1700") == {base["de_trade"], base["fr"]}
    assert ids(mcrm, "purchases() = 0") == {base["none"]}
    assert ids(mcrm, 'purchases(category="tiles") >= 1') == {base["de_trade"], base["de_retail"]}
    assert ids(mcrm, "recency <= 30") == {base["de_trade"], base["fr"]}
    assert ids(mcrm, "recency > 30") == {base["de_retail"]}  # no purchase at all is not "older than 30 days"
    assert ids(mcrm, 'region in ("Bavaria", "Hesse") and not tags has "retail"') == {base["de_trade"]}
    assert ids(mcrm, 'country = "DE" and tags has "trade" and spend(days=365) > 1000') == {base["de_trade"]}
    assert ids(mcrm, 'not country = "DE"') == {base["fr"], base["none"]}  # NULL country counts as "not DE"
    assert ids(mcrm, 'country != "DE" or industry = "Kitchens"') == {base["fr"], base["de_trade"]}


def test_behavioural_interactions_and_spend_currency(mcrm: CRM, shop: Shop, base: dict[str, int]) -> None:
    from crmcore.schemas import InteractionCreate

    with mcrm.unit_of_work("test") as uow:
        uow.interactions.log(base["fr"], InteractionCreate(channel="phone", kind="complaint", subject="late delivery"))
    assert ids(mcrm, 'interactions(kind="complaint", days=90) > 0') == {base["fr"]}
    assert ids(mcrm, 'interactions(kind="complaint", channel="email") > 0') == set()
    shop.invoice(base["none"], "999.00", NOW - dt.timedelta(days=1), currency="USD")
    # spend is counted in one currency (the setting, EUR, unless given): never EUR + USD added together
    assert base["none"] not in ids(mcrm, "spend() > 100")
    assert ids(mcrm, 'spend(currency="USD") > 100') == {base["none"]}


def test_custom_attribute_fields(make_crm: Any, shop: Shop) -> None:
    import crm_marketing.plugin as PLUGIN

    class Fields:
        @staticmethod
        @hookimpl
        def crm_register_custom_fields(register: Any) -> None:
            register(FieldDefinition("budget", "decimal"))

    crm = make_crm(plugins=[PLUGIN, ("fields", Fields)])
    s = Shop(crm)
    a = s.customer("A1", attributes={"budget": "5000"})
    s.customer("A2", attributes={"budget": "10"})
    assert ids(crm, "attr.budget >= 1000") == {a}
    with pytest.raises(InvalidInput, match=r"'attr\.colour': unknown custom field"):
        ids(crm, 'attr.colour = "red"')


@pytest.mark.parametrize("rule, message", [
    ('colour = "red"', "field 'colour': unknown field"),
    ("spend(weeks=3) > 1", "unknown argument(s) weeks"),
    ('spend(days="x") > 1', "days must be a whole number"),
    ("spend(days=0) > 1", "days must be a whole number"),
    ('country > 3', "compares with a text"),
    ('spend() > "a lot"', "compares with a number"),
    ('country has "D"', "'has' works on tags only"),
    ('tags = "x"', "use 'tags has"),
    ('value_tier = "vip"', "needs the value_analysis plugin"),
    ('country = ', "syntax error"),
    ('country = "DE" and', "syntax error"),
    ("", "it is empty"),
    ('{"field": "country", "op": "~", "value": "DE"}', "a comparison needs field, op"),
    ('{"and": []}', "'and' takes a non-empty list"),
    ('{"and": [', "not valid JSON"),
    ("not " * 80 + 'country = "DE"', "nested deeper"),
    ('{"not": ' * 60 + '{"field": "country", "op": "=", "value": "DE"}' + "}" * 60, "nested deeper"),
    ("x" * 20_000, "longer than"),
    ('kind = "bogus"', "is not one of person, organization, government"),
    ('lifecycle_stage in ("active", "zombie")', '"zombie" is not one of'),
    ('{"field": "spend", "args": [1], "op": ">", "value": 1}', "'args' must be an object"),
    ('{"field": "spend", "args": 5, "op": ">", "value": 1}', "'args' must be an object"),
])
def test_bad_rules_name_the_problem(mcrm: CRM, rule: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="invalid rule") as e:
        ids(mcrm, rule)
    assert message in str(e.value)


def test_edge_values_compile_and_run(mcrm: CRM, base: dict[str, int]) -> None:
    assert ids(mcrm, "purchases() in (0, 1)") == {base["none"], base["de_retail"], base["fr"]}
    assert ids(mcrm, "recency <= 1000000") == {base["de_trade"], base["de_retail"], base["fr"]}
    assert ids(mcrm, "recency < -5") == set()  # nobody bought in the future
    assert ids(mcrm, "recency > -5") == {base["de_trade"], base["de_retail"], base["fr"]}


def test_parentheses_do_not_nest_the_rule(mcrm: CRM, base: dict[str, int]) -> None:
    assert segments.parse("(" * 2000 + 'country = "DE"' + ")" * 2000) == segments.parse('country = "DE"')


def test_json_rule_is_the_same_rule(mcrm: CRM, base: dict[str, int]) -> None:
    text = 'country = "DE" and spend(days=365) > 1000'
    tree = segments.parse(text)
    import json

    assert ids(mcrm, json.dumps(tree)) == ids(mcrm, text) == {base["de_trade"]}
    assert segments.parse(segments.to_text(tree)) == tree


def test_preview_runs_one_query_for_the_rule(mcrm: CRM, base: dict[str, int]) -> None:
    statements: list[str] = []
    def listener(conn: object, cursor: object, statement: str, *a: object) -> None:
        statements.append(statement)

    event.listen(mcrm.engine, "before_cursor_execute", listener)
    try:
        with mcrm.unit_of_work("test", read_only=True) as uow:
            q = services.rule_query(uow, segments.parse('country = "DE" and tags has "trade" and spend(days=365) > 1000'))
            n = len(statements)
            count, sample = services.preview(uow, q, sample=5)
            used = [s for s in statements[n:] if "customers" in s]
    finally:
        event.remove(mcrm.engine, "before_cursor_execute", listener)
    assert count == 1 and sample[0]["id"] == base["de_trade"]
    assert len(used) == 2  # the count and the sample: each one statement, whatever the rule


def test_static_lists_and_frozen_snapshots(mcrm: CRM, shop: Shop, base: dict[str, int]) -> None:
    with mcrm.unit_of_work("test") as uow:
        static = services.create_segment(uow, "fair visitors", members=["DE1", "FR1"])
        rule = services.create_segment(uow, "germans", rule='country = "DE"')
        assert services.freeze(uow, rule) == 2
        with pytest.raises(Exception, match="frozen"):
            services.freeze(uow, rule)
        assert services.add_members(uow, static, ["DE1", "X1"]) == 1  # DE1 already in: counted once
    late = shop.customer("DE3", country="DE")
    with mcrm.unit_of_work("test", read_only=True) as uow:
        frozen = set(uow.session.scalars(services.segment_query(uow, services.get_segment(uow, "germans"))))
        listed = set(uow.session.scalars(services.segment_query(uow, services.get_segment(uow, "fair visitors"))))
    assert frozen == {base["de_trade"], base["de_retail"]} and late not in frozen
    assert listed == {base["de_trade"], base["fr"], base["none"]}


# -- the compiled SQL agrees with a plain reading of the rule, on generated data -------------

COUNTRIES = ["DE", "FR", "AT", None]
TAGS = ["trade", "retail", "vip"]


def _python_eval(node: dict[str, Any], c: dict[str, Any]) -> bool | None:
    if "and" in node:
        vals = [_python_eval(p, c) for p in node["and"]]
        return False if False in vals else (None if None in vals else True)
    if "or" in node:
        vals = [_python_eval(p, c) for p in node["or"]]
        return True if True in vals else (None if None in vals else False)
    if "not" in node:
        v = _python_eval(node["not"], c)
        return not bool(v)
    f, op, v = node["field"], node["op"], node["value"]
    if f == "tags":
        return bool(set(v if op == "in" else [v]) & set(c["tags"]))
    x = c["spend"] if f == "spend" else c["purchases"] if f == "purchases" else c[f]
    if x is None:
        return None
    return {"=": x == v, "!=": x != v, "<": x < v, ">": x > v, "<=": x <= v, ">=": x >= v,
            "in": x in (v if isinstance(v, list) else [v])}[op]


leaf = st.one_of(
    st.builds(lambda op, v: {"field": "country", "op": op, "value": v}, st.sampled_from(["=", "!="]), st.sampled_from(["DE", "FR", "AT"])),
    st.builds(lambda v: {"field": "tags", "op": "has", "value": v}, st.sampled_from(TAGS)),
    st.builds(lambda op, v: {"field": "spend", "args": {}, "op": op, "value": v},
              st.sampled_from(["<", ">", "<=", ">=", "="]), st.sampled_from([0, 100, 250, 1000])),
    st.builds(lambda op, v: {"field": "purchases", "args": {}, "op": op, "value": v},
              st.sampled_from(["<", ">", "=", "!="]), st.integers(0, 3)),
)
rules = st.recursive(leaf, lambda inner: st.one_of(
    st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda x: {"not": x}, inner)), max_leaves=6)


def test_compiled_rules_agree_with_python(mcrm: CRM, shop: Shop) -> None:
    import random

    rnd = random.Random(7)
    people = []
    for i in range(24):
        country = COUNTRIES[i % 4]
        tags = [t for t in TAGS if rnd.random() < 0.4]
        cid = shop.customer(f"P{i}", country=country, tags=tags)
        amounts = [rnd.choice([50, 100, 150, 250, 900]) for _ in range(rnd.randint(0, 3))]
        for a in amounts:
            shop.invoice(cid, f"{a}.00", NOW - dt.timedelta(days=rnd.randint(1, 300)))
        people.append({"id": cid, "country": country, "tags": tags, "spend": Decimal(sum(amounts)), "purchases": len(amounts)})

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
    @given(rules)
    def check(tree: dict[str, Any]) -> None:
        import json

        expected = {p["id"] for p in people if _python_eval(tree, p) is True}
        assert ids(mcrm, json.dumps(tree)) == expected, segments.to_text(tree)

    check()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=200) | st.text(alphabet='()"=<>!. ,andortgsh0123456789-{}[]:', max_size=120))
def test_any_text_is_a_rule_or_one_clear_error(text: str) -> None:
    """Whatever a user types, parsing ends in a rule tree or an InvalidInput naming the rule."""
    try:
        tree = segments.parse(text)
    except InvalidInput as e:
        assert str(e).startswith("invalid rule") and "\n" not in str(e)
    else:
        assert isinstance(tree, dict)


def test_value_analysis_fields_when_that_plugin_is_enabled(make_crm: Any) -> None:
    import crm_marketing.plugin as PLUGIN
    import crm_value_analysis.plugin as VALUE
    from crm_value_analysis import services as value_services
    from sqlalchemy import text

    crm = make_crm(plugins=[PLUGIN, VALUE])
    s = Shop(crm)
    ids_ = [s.customer(f"V{i}", country="DE") for i in range(30)]
    for n, cid in enumerate(ids_):
        for k in range(1 + n % 4):
            s.invoice(cid, f"{(n + 1) * 10}.00", NOW - dt.timedelta(days=30 * k + n))
    with crm.unit_of_work("test") as uow:
        value_services.run_analysis(uow, as_of=NOW.date())
    with crm.engine.connect() as conn:
        rows = conn.execute(text("SELECT customer_id, tier FROM value_analysis_customer_values "
                                 "WHERE run_id = (SELECT max(id) FROM value_analysis_runs)")).all()
    best = dict(rows)[ids_[-1]]  # the tier of the biggest spender
    expected = {c for c, t in rows if t == best}
    assert expected and len({t for _, t in rows}) > 1
    assert ids(crm, f'value_tier = "{best}"') == expected
    assert ids(crm, f'value_tier = "{best}" or country = "FR"') == expected
    assert ids(crm, f'not value_tier = "{best}"') == set(ids_) - expected
