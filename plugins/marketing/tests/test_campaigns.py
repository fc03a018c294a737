"""Campaigns: creation rules, launch (consent, suppression, control group), sending (file, SMTP, resume)."""
from __future__ import annotations

import datetime as dt
import email
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from crm_marketing import delivery, services
from crm_marketing.models import Target
from crm_marketing.schemas import CampaignCreate, ConsentSet, CostCreate
from crm_marketing.testing import Shop
from sqlalchemy import func, select

from crmcore import CRM, Conflict, InvalidInput
from crmcore.db.types import utcnow
from crmcore.models import Interaction


def consent(crm: CRM, customer_id: int, channel: str = "email", status: str = "opt_in") -> None:
    with crm.unit_of_work("test") as uow:
        services.set_consent(uow, customer_id, ConsentSet(channel=channel, status=status, source="web form"))


def campaign(crm: CRM, name: str = "Spring", segment_rule: str = 'country = "DE"', **kw: Any) -> str:
    with crm.unit_of_work("test") as uow:
        if uow.session.scalar(select(func.count()).select_from(services.Segment).where(services.Segment.name == f"seg-{name}")) == 0:
            services.create_segment(uow, f"seg-{name}", rule=segment_rule)
        data = CampaignCreate(name=name, channel=kw.pop("channel", "email"), segments=[f"seg-{name}"],
                              subject=kw.pop("subject", "Hello {{ customer.name }}"),
                              body=kw.pop("body", "Dear {{ customer.name }}, our {{ campaign.name }} offer."), **kw)
        return services.create_campaign(uow, data).name


def launch(crm: CRM, name: str) -> dict[str, int]:
    with crm.unit_of_work("test") as uow:
        return services.launch(uow, services.get_campaign(uow, name))


def targets(crm: CRM, name: str) -> dict[int, SimpleNamespace]:
    with crm.unit_of_work("test", read_only=True) as uow:
        c = services.get_campaign(uow, name)
        return {t.customer_id: SimpleNamespace(grp=t.grp, reason=t.reason, status=t.status, variant_id=t.variant_id)
                for t in uow.session.scalars(select(Target).where(Target.campaign_id == c.id))}


@pytest.fixture
def germans(mcrm: CRM, shop: Shop) -> list[int]:
    ids = [shop.customer(f"DE{i}", country="DE") for i in range(6)]
    for i in ids[:4]:
        consent(mcrm, i)
    consent(mcrm, ids[4], status="opt_out")  # ids[5]: never asked
    return ids


def test_launch_suppresses_without_consent_and_never_contacts_them(mcrm: CRM, germans: list[int], tmp_path: Path) -> None:
    campaign(mcrm)
    counts = launch(mcrm, "Spring")
    assert counts == {"targeted": 6, "contact": 4, "control": 0, "suppressed": 2}
    t = targets(mcrm, "Spring")
    assert t[germans[4]].reason == "consent: opt_out" and t[germans[5]].reason == "consent: no opt-in"
    res = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    assert (res.sent, res.failed, res.pending) == (4, 0, 0)
    files = sorted((tmp_path / "campaign-1").glob("*.eml"))
    assert len(files) == 4
    assert not (tmp_path / "campaign-1" / f"customer-{germans[4]}.eml").exists()
    msg = email.message_from_bytes(files[0].read_bytes())
    assert msg["Subject"].startswith("Hello Customer DE") and "Spring offer" in msg.get_payload()
    with mcrm.unit_of_work("test", read_only=True) as uow:
        logged = [SimpleNamespace(customer_id=i.customer_id, direction=i.direction, channel=i.channel, source_ref=i.source_ref)
                  for i in uow.session.scalars(select(Interaction).where(Interaction.source == "marketing"))]
    assert len(logged) == 4 and {i.customer_id for i in logged} == set(germans[:4])
    assert all(i.direction == "outbound" and i.channel == "email" and i.source_ref == "campaign:1" for i in logged)
    # a second send contacts nobody again
    again = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    assert (again.sent, again.pending) == (0, 0)


def test_control_group_is_seeded_and_not_contacted(mcrm: CRM, shop: Shop, tmp_path: Path) -> None:
    ids = [shop.customer(f"C{i}", country="AT") for i in range(200)]
    for i in ids:
        consent(mcrm, i)
    campaign(mcrm, "A", 'country = "AT"', control_share=0.25, seed=11)
    campaign(mcrm, "B", 'country = "AT"', control_share=0.25, seed=11)
    a, b = launch(mcrm, "A"), launch(mcrm, "B")
    assert a == b and 30 <= a["control"] <= 70 and a["contact"] + a["control"] == 200
    ta, tb = targets(mcrm, "A"), targets(mcrm, "B")
    assert {k for k, v in ta.items() if v.grp == "control"} == {k for k, v in tb.items() if v.grp == "control"}
    delivery.send(mcrm, "test", "A", "file", outbox=tmp_path)
    sent = {int(p.stem.split("-")[1]) for p in (tmp_path / "campaign-1").glob("*.eml")}
    assert sent == {k for k, v in ta.items() if v.grp == "contact"}


def test_ab_split_follows_shares(mcrm: CRM, shop: Shop) -> None:
    ids = [shop.customer(f"V{i}", country="AT") for i in range(300)]
    for i in ids:
        consent(mcrm, i)
    campaign(mcrm, "AB", 'country = "AT"', variants=[{"name": "A", "share": 0.7}, {"name": "B", "share": 0.3, "subject": "Hi"}])
    launch(mcrm, "AB")
    by_variant: dict[Any, int] = {}
    for t in targets(mcrm, "AB").values():
        by_variant[t.variant_id] = by_variant.get(t.variant_id, 0) + 1
    assert sorted(by_variant) == [1, 2] and 170 <= by_variant[1] <= 250


@pytest.mark.parametrize("kw, message", [
    ({"segments": []}, "segments"),
    ({"segments": ["nope"]}, "segment 'nope' not found"),
    ({"body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, "not allowed in a template"),
    ({"subject": "{{ customer.name.__class__ }}"}, "not allowed in a template"),
    ({"body": "{% for x in %}"}, "invalid template"),
    ({"body": "{{ customer.nmae }}"}, "invalid template"),
    ({"variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.4}]}, "add up to 1"),
    ({"control_share": 1.0}, "control_share"),
    ({"budget": "-5"}, "budget"),
    ({"channel": "pigeon"}, "channel"),
])
def test_bad_campaigns_are_refused(mcrm: CRM, germans: list[int], kw: dict[str, Any], message: str) -> None:
    with mcrm.unit_of_work("test") as uow:
        services.create_segment(uow, "de", rule='country = "DE"')
    data = {"name": "X", "channel": "email", "segments": ["de"], **kw}
    with pytest.raises((InvalidInput, Exception), match=message), mcrm.unit_of_work("test") as uow:
        services.create_campaign(uow, CampaignCreate(**data))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert services.list_campaigns(uow) == []


def test_template_cannot_execute_customer_data(mcrm: CRM, shop: Shop, tmp_path: Path) -> None:
    cid = shop.customer("EVIL", name="{{ 7*7 }} {% raw %}", country="DE")
    consent(mcrm, cid)
    campaign(mcrm, "T", body="Name: {{ customer.name }}")
    launch(mcrm, "T")
    delivery.send(mcrm, "test", "T", "file", outbox=tmp_path)
    body = email.message_from_bytes(next((tmp_path / "campaign-1").glob("*.eml")).read_bytes()).get_payload()
    assert "{{ 7*7 }} {% raw %}" in body and "49" not in body


def test_lifecycle_rules(mcrm: CRM, germans: list[int], tmp_path: Path) -> None:
    campaign(mcrm)
    with pytest.raises(Conflict, match="launch it before sending"):
        delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    launch(mcrm, "Spring")
    with pytest.raises(Conflict, match="only a draft or scheduled campaign can be launched"):
        launch(mcrm, "Spring")
    with pytest.raises(InvalidInput, match="unknown channel adapter 'fax'"):
        delivery.send(mcrm, "test", "Spring", "fax")
    with mcrm.unit_of_work("test") as uow:
        services.set_status(uow, services.get_campaign(uow, "Spring"), "cancelled")
    with pytest.raises(Conflict, match="is cancelled; nothing more is sent"):
        delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)


def test_campaign_whose_segment_matches_nobody(mcrm: CRM, shop: Shop) -> None:
    shop.customer("FR", country="FR")
    campaign(mcrm, "Empty", 'country = "JP"')
    with pytest.raises(Conflict, match="match no customer"):
        launch(mcrm, "Empty")


def test_costs_counted_once_and_negative_refused(mcrm: CRM, germans: list[int]) -> None:
    campaign(mcrm)
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "Spring")
        assert services.add_cost(uow, c, CostCreate(amount="100.00", reference="PRINT-1"))[1] is True
        assert services.add_cost(uow, c, CostCreate(amount="100.00", reference="PRINT-1"))[1] is False
        with pytest.raises(Conflict, match="already recorded"):
            services.add_cost(uow, c, CostCreate(amount="120.00", reference="PRINT-1"))
    with pytest.raises(Exception, match="greater than 0"):
        CostCreate(amount="-5", reference="X")


class Crash(BaseException):
    """Stands for a kill in the middle of a send (not an Exception: nothing catches it)."""


def test_interrupted_send_resumes_and_contacts_nobody_twice(mcrm: CRM, shop: Shop, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [shop.customer(f"R{i}", country="DE") for i in range(25)]
    for i in ids:
        consent(mcrm, i)
    campaign(mcrm, "Resume")
    launch(mcrm, "Resume")
    real_send = delivery.FileAdapter.send
    calls = {"n": 0}

    def flaky(self: delivery.FileAdapter, m: delivery.Message) -> None:
        calls["n"] += 1
        if calls["n"] == 8:
            raise Crash()
        real_send(self, m)

    monkeypatch.setattr(delivery.FileAdapter, "send", flaky)
    with pytest.raises(Crash):
        delivery.send(mcrm, "test", "Resume", "file", outbox=tmp_path)
    t = targets(mcrm, "Resume")
    assert sum(v.status == "sent" for v in t.values()) == 7
    # the message being sent when it crashed is in doubt (never put back blindly); the other claims were
    assert sum(v.status == "sending" for v in t.values()) == 1
    monkeypatch.setattr(delivery.FileAdapter, "send", real_send)
    res = delivery.send(mcrm, "test", "Resume", "file", outbox=tmp_path)
    assert (res.sent, res.pending) == (17, 0)  # resumes where it stopped; the young in-doubt claim waits
    mcrm.settings("marketing").claim_timeout_minutes = 0  # type: ignore[attr-defined]  # as if 15 minutes passed
    res = delivery.send(mcrm, "test", "Resume", "file", outbox=tmp_path)
    assert (res.sent, res.in_doubt) == (1, 0)  # the file adapter saw it was never written: sent now, once
    assert len(list((tmp_path / "campaign-1").glob("*.eml"))) == 25
    with mcrm.unit_of_work("test", read_only=True) as uow:
        n = uow.session.scalar(select(func.count()).select_from(Interaction).where(Interaction.source == "marketing"))
    assert n == 25


def test_killed_send_leaves_claims_in_doubt_and_file_adapter_settles_them(mcrm: CRM, germans: list[int], tmp_path: Path) -> None:
    campaign(mcrm)
    launch(mcrm, "Spring")
    # a run killed after writing one message and before recording it: its claim stays "sending"
    with mcrm.unit_of_work("test") as uow:
        c = services.get_campaign(uow, "Spring")
        uow.session.execute(Target.__table__.update().where(Target.campaign_id == c.id, Target.customer_id.in_(germans[:2]))
                            .values(status="sending", claimed_at=utcnow() - dt.timedelta(hours=1)))
        msg = delivery._message(uow, c, uow.session.get(Target, (c.id, germans[0])))
    delivery.FileAdapter(tmp_path).send(msg)
    res = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    # the written one is recognised as delivered, the other one (not written) is sent now: once each
    assert res.settled == 1 and res.sent == 3 and res.in_doubt == 0
    assert len(list((tmp_path / "campaign-1").glob("*.eml"))) == 4


def test_smtp_send_against_a_local_server(mcrm: CRM, germans: list[int]) -> None:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    import socket

    with socket.socket() as sock:  # a free port on loopback
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        campaign(mcrm)
        launch(mcrm, "Spring")
        crm = mcrm
        crm.settings("marketing").smtp_port = port  # type: ignore[attr-defined]
        res = delivery.send(crm, "test", "Spring", "smtp")
    finally:
        ctl.stop()
    assert res.sent == 4 and len(received) == 4
    rcpts = sorted(r[0][0] for r in received)
    assert rcpts == sorted(f"de{i}@example.com" for i in range(4))
    assert all(m["X-CRM-Campaign"] == "1" and m["Subject"].startswith("Hello ") for _, m in received)


def test_smtp_server_down_is_one_clear_error(mcrm: CRM, germans: list[int]) -> None:
    campaign(mcrm)
    launch(mcrm, "Spring")
    mcrm.settings("marketing").smtp_port = 1  # type: ignore[attr-defined]
    with pytest.raises(Exception, match=r"cannot reach the SMTP server 127\.0\.0\.1:1"):
        delivery.send(mcrm, "test", "Spring", "smtp")
    assert all(t.status == "pending" for t in targets(mcrm, "Spring").values() if t.grp == "contact")


def test_merge_repoints_marketing_rows(mcrm: CRM, germans: list[int]) -> None:
    campaign(mcrm)
    launch(mcrm, "Spring")
    with mcrm.unit_of_work("test") as uow:
        counts = services.merge_customer_rows(uow, germans[0], germans[5])
    assert counts["marketing_targets"] == 0  # both were targeted: the target's own row is kept
    assert counts["marketing_consents"] == 1  # the opt-in moves to the customer that had none



def test_a_plugin_adds_a_channel_adapter_through_the_published_hook(make_crm: Any, tmp_path: Path) -> None:
    """The README's fax example: an optional hook implementation in another plugin."""
    import crm_marketing.plugin as PLUGIN

    from crmcore import hookimpl

    sent: list[str] = []

    class FaxAdapter:
        name = "fax"

        def open(self) -> None: ...

        def send(self, message: delivery.Message) -> None:
            sent.append(f"{message.address} {message.subject}")

        def delivered(self, message: delivery.Message) -> bool | None:
            return None

        def close(self) -> None: ...

    class Fax:
        @staticmethod
        @hookimpl(optionalhook=True)
        def marketing_channel_adapters(register: Any) -> None:
            register("fax", FaxAdapter)

    crm = make_crm(plugins=[PLUGIN, ("fax", Fax)])
    shop = Shop(crm)
    ids = [shop.customer(f"F{i}", country="DE") for i in range(3)]
    for i in ids:
        consent(crm, i)
    campaign(crm)
    launch(crm, "Spring")
    res = delivery.send(crm, "test", "Spring", "fax")
    assert res.sent == 3 and sorted(sent) == [f"f{i}@example.com Hello Customer F{i}" for i in range(3)]


def test_the_fax_plugin_alone_loads_without_marketing(make_crm: Any) -> None:
    """optionalhook: implementing a hook of a plugin that is not loaded is allowed."""
    from crmcore import hookimpl

    class Fax:
        @staticmethod
        @hookimpl(optionalhook=True)
        def marketing_channel_adapters(register: Any) -> None:
            register("fax", object)

    crm = make_crm(plugins=[("fax", Fax)])
    assert "fax" in crm.hooks.plugins


def test_consent_withdrawn_after_launch_is_respected_at_send(mcrm: CRM, germans: list[int], tmp_path: Path) -> None:
    campaign(mcrm)
    launch(mcrm, "Spring")
    consent(mcrm, germans[1], status="unsubscribed")  # after the launch, before the send
    with mcrm.unit_of_work("test") as uow:
        uow.customers.archive(germans[2])
    res = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    assert (res.sent, res.skipped) == (2, 2)
    assert not (tmp_path / "campaign-1" / f"customer-{germans[1]}.eml").exists()
    t = targets(mcrm, "Spring")
    assert (t[germans[1]].status, t[germans[1]].reason) == ("skipped", "consent: unsubscribed")
    assert t[germans[2]].reason == "customer archived"


def test_a_template_error_fails_one_customer_not_the_run(mcrm: CRM, germans: list[int], tmp_path: Path) -> None:
    campaign(mcrm, body="{{ 1 / customer.attributes.get('zero', 0) }}")
    launch(mcrm, "Spring")
    res = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    assert res.failed == 4 and res.sent == 0 and "ZeroDivisionError" in res.errors[0]


def test_recording_failure_after_a_send_leaves_it_in_doubt_not_resent(mcrm: CRM, germans: list[int], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    campaign(mcrm)
    launch(mcrm, "Spring")
    real = delivery._record
    calls = {"n": 0}

    def failing(*a: Any, **kw: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Conflict("the customer was merged meanwhile")
        real(*a, **kw)

    monkeypatch.setattr(delivery, "_record", failing)
    res = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    assert res.sent == 3 and "sent, but recording it failed" in res.errors[0]
    monkeypatch.setattr(delivery, "_record", real)
    again = delivery.send(mcrm, "test", "Spring", "file", outbox=tmp_path)
    assert again.sent == 0  # the in-doubt one is not sent again (its claim is young: a live sender may hold it)
    assert sum(v.status == "sending" for v in targets(mcrm, "Spring").values()) == 1


def test_merge_keeps_the_newer_consent(mcrm: CRM, shop: Shop) -> None:
    a, b = shop.customer("MA"), shop.customer("MB")
    with mcrm.unit_of_work("test") as uow:
        services.set_consent(uow, a, ConsentSet(channel="email", status="opt_in", at=utcnow() - dt.timedelta(days=400)))
        services.set_consent(uow, b, ConsentSet(channel="email", status="unsubscribed", at=utcnow() - dt.timedelta(days=1)))
        services.merge_customer_rows(uow, b, a)  # b merged into a: b's newer unsubscribe stands
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert [c.status for c in services.consents(uow, a)] == ["unsubscribed"]
