"""Templates are bounded (time, steps, size), dunders are refused through filters too, and a
message that cannot be built fails its target with the reason: nothing stays ``sending``."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crm_marketing import delivery, sandbox, services
from crm_marketing.models import Target
from crm_marketing.schemas import CampaignCreate
from crm_marketing.testing import Shop
from sqlalchemy import select

from crmcore import CRM, InvalidInput


def one_line_error(result: Any, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture
def audience(shop: Shop, mcli: Callable[..., Any]) -> list[int]:
    ids = [shop.customer(ref, name=name) for ref, name in (("A1", "Ann"), ("B1", "Bob"), ("C1", "Cy"))]
    for ref in ("A1", "B1", "C1"):
        assert mcli("marketing", "consent", "set", ref, "email", "opt_in").exit_code == 0
    assert mcli("marketing", "segment", "create", "all", "--rule", 'name != "-"').exit_code == 0
    return ids


BAD_AT_SAVE = [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "more than 1,000,000 steps"),
    ("{{ 'x' * 20000000000 }}", "a repetition would be 20,000,000,000 characters"),
    ("{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", "steps"),
    ("{{ 'x'.ljust(10**9) }}", "characters long"),
    ("{{ '{:>999999999}'.format(1) }}", "a width or precision"),
    ("{{ '%999999999d' % 1 }}", "a width or precision"),
    ("{{ 2 ** 1000000000 }}", "a power with more than"),
    ("{% set x = 'x' * 900000 %}{{ x ~ x }}", "a concatenation"),
    ("{% for i in range(2000) %}{{ 'y' * 1000 }}{% endfor %}", "the output would be"),
    ("{{ range(10**30) }}", "a range of more than"),
    ("{{ 'x'|center(10**12) }}", "filter center"),
    ("{{ ['a']|batch(10**9, 'x')|list }}", "filter batch"),
    ("{{ range(1000)|join('x' * 100000) }}", "a joined text"),
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}", "render budget"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested too deeply"),
    ("{{ customer|map(attribute='__class__')|list }}", "not allowed in a template"),
    ("{{ campaign|map(attribute='__class__')|join }}", "not allowed in a template"),
    ("{{ customer|attr('__class__') }}", "not allowed in a template"),
    ("{{ ''.__class__ }}", "not allowed in a template"),
]


@pytest.mark.parametrize(("body", "expected"), BAD_AT_SAVE)
def test_a_template_over_the_budget_is_refused_at_save(mcli: Callable[..., Any], audience: list[int], body: str,
                                                      expected: str) -> None:
    t0 = time.monotonic()
    line = one_line_error(mcli("marketing", "campaign", "create", "Bad", "--channel", "email", "--segment", "all",
                               "--body", body))
    assert time.monotonic() - t0 < sandbox.MAX_SECONDS + 10  # refused within the budget, not after minutes
    assert line.startswith("error: invalid template (body):") and expected in line, line
    assert "not found" in mcli("marketing", "campaign", "show", "Bad").output  # nothing stored


def test_a_subject_that_renders_a_line_break_is_refused_at_save(mcli: Callable[..., Any], audience: list[int]) -> None:
    line = one_line_error(mcli("marketing", "campaign", "create", "Bad", "--channel", "email", "--segment", "all",
                               "--subject", 'Hi{{ "\\r\\n" }}Bcc: evil@example.com'))
    assert "subject" in line and "U+000D" in line


def test_the_budget_applies_per_message_at_send(mcrm: CRM, mcli: Callable[..., Any], audience: list[int],
                                                tmp_path: Path) -> None:
    """A template fine with sample data but over the budget for one customer fails that customer only."""
    body = "{{ customer.name * 400000 }}"  # sample 'x' and 'X': 400,000 characters; 'Cy' 800,000; 'Bobby' 2,000,000
    with mcrm.unit_of_work("test") as uow:
        uow.customers.update(audience[0], _name("X"))
        uow.customers.update(audience[1], _name("Bobby"))
    assert mcli("marketing", "campaign", "create", "Big", "--channel", "email", "--segment", "all", "--body", body).exit_code == 0
    launched = mcli("marketing", "campaign", "launch", "Big")
    assert launched.exit_code == 0, launched.output
    res = mcli("marketing", "campaign", "send", "Big", "--outbox", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert "sent 2, failed 1, pending 0" in res.output
    assert f"customer {audience[1]}: template (body): over the render budget: a repetition would be 2,000,000" in res.output
    statuses = _statuses(mcrm)
    assert statuses == {audience[0]: "sent", audience[1]: "failed", audience[2]: "sent"}
    assert len(list((tmp_path / "out").rglob("*.eml"))) == 2


def _name(name: str) -> Any:
    from crmcore.schemas import CustomerUpdate

    return CustomerUpdate(name=name)


def _statuses(crm: CRM) -> dict[int, str]:
    with crm.unit_of_work("test", read_only=True) as uow:
        return dict(uow.session.execute(select(Target.customer_id, Target.status)).all())


def test_a_subject_with_a_line_break_fails_its_target_and_nothing_stays_sending(
        mcrm: CRM, mcli: Callable[..., Any], audience: list[int], tmp_path: Path) -> None:
    subject = '{% if customer.name == "Bob" %}Hi{{ "\\r\\n" }}Bcc: evil@example.com{% else %}Hi {{ customer.name }}{% endif %}'
    assert mcli("marketing", "campaign", "create", "Crlf", "--channel", "email", "--segment", "all",
                "--subject", subject, "--body", "Body").exit_code == 0
    assert mcli("marketing", "campaign", "launch", "Crlf").exit_code == 0
    outbox = tmp_path / "out"
    res = mcli("marketing", "campaign", "send", "Crlf", "--outbox", str(outbox))
    assert res.exit_code == 1 and "Traceback" not in res.output and "ValidationError" not in res.output
    assert "sent 2, failed 1, pending 0" in res.output
    assert f"customer {audience[1]}: the subject contains a control character (U+000D)" in res.output
    statuses = _statuses(mcrm)
    assert statuses[audience[1]] == "failed" and "sending" not in statuses.values()
    assert sorted(p.name for p in outbox.rglob("*.eml")) == [f"customer-{audience[0]}.eml", f"customer-{audience[2]}.eml"]
    again = mcli("marketing", "campaign", "send", "Crlf", "--outbox", str(outbox))
    assert again.exit_code == 0
    assert "sent 0, failed 0, pending 0, 1 failed in earlier runs" in again.output
    assert f"customer {audience[1]}: failed in an earlier run: the subject contains a control character" in again.output
    with mcrm.unit_of_work("test", read_only=True) as uow:
        error = uow.session.scalar(select(Target.error).where(Target.customer_id == audience[1]))
    assert error is not None and "U+000D" in error
    report = json.loads(mcli("marketing", "campaign", "report", "Crlf", "--json").output)
    assert report["failed"] == 1 and report["delivered"] == 2


def test_an_adapter_that_raises_fails_the_target_not_the_run(mcrm: CRM, shop: Shop, audience: list[int]) -> None:
    class Refusing:
        name = "refusing"

        def open(self) -> None: ...
        def close(self) -> None: ...
        def delivered(self, m: Any) -> bool | None:
            return None

        def send(self, m: Any) -> None:
            raise ValueError("header refused\nsecond line")

    with mcrm.unit_of_work("root") as uow:
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="R", channel="email", segments=["all"])))
    import crm_marketing.delivery as d

    original = d.adapters
    d.adapters = lambda crm, s, outbox=None: {"refusing": Refusing}  # type: ignore[assignment]
    try:
        res = delivery.send(mcrm, "root", "R", "refusing")
    finally:
        d.adapters = original  # type: ignore[assignment]
    assert (res.sent, res.failed, res.pending) == (0, 3, 0)
    assert all("ValueError: header refused" in e and "\n" not in e for e in res.errors)
    assert set(_statuses(mcrm).values()) == {"failed"}


def test_render_outside_the_budget_is_refused() -> None:
    template = sandbox.compile_template("{% for i in range(3) %}{{ i }}{% endfor %}")
    with pytest.raises(sandbox.BudgetExceeded):
        template.render({})
    assert sandbox.render("{% for i in range(3) %}{{ i }}{% endfor %}", {}) == "012"


def test_ordinary_templates_still_work() -> None:
    ctx = {"customer": {"name": "Ann", "tags": ["a", "b"]}, "campaign": {"name": "C"}}
    text = ("{% for t in customer.tags %}{{ loop.index }}:{{ t }}{% if not loop.last %}, {% endif %}{% endfor %} "
            "{{ customer.name ~ '-' ~ campaign.name }} {{ '%05d' % 42 }} {{ '{:>4}'.format('x') }} "
            "{{ 'a b'|replace(' ', '_') }} {{ customer.tags|join('/') }} {{ range(3)|list }} {{ 'ab'|center(4) }}"
            "{% macro m(x) %}[{{ x }}]{% endmacro %}{{ m(1) }}{% set y %}cap{% endset %}{{ y|upper }}")
    assert sandbox.render(text, ctx) == "1:a, 2:b Ann-C 00042    x a_b a/b [0, 1, 2]  ab [1]CAP"


def test_the_python_api_refuses_like_the_cli(mcrm: CRM, audience: list[int]) -> None:
    with mcrm.unit_of_work("root") as uow, pytest.raises(InvalidInput, match="over the render budget"):
        services.create_campaign(uow, CampaignCreate(name="P", channel="email", segments=["all"],
                                                     body="{{ 'x' * 20000000000 }}"))
