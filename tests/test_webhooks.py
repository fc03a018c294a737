"""Webhooks through the outbox: written with the change, delivered signed to a local receiver, retried
in order per customer, dead-lettered, and never sent for a rolled-back change."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from crmcore import CRM, Veto, hookimpl
from crmcore.db.types import utcnow
from crmcore.models import OutboxEvent, WebhookDelivery, WebhookSubscription
from crmcore.schemas import CustomerCreate, CustomerUpdate, TransactionCreate
from crmcore.webhooks.delivery import deliver, sign

SECRET = "s3cret-s3cret-s3cret"
#: the local receiver is on loopback, which a webhook may target only when allow-listed
ALLOW_LOCAL = {"webhooks": {"allow_hosts": ["127.0.0.1"]}}


@pytest.fixture
def crm(make_crm: Callable[..., CRM]) -> CRM:
    return make_crm(config=ALLOW_LOCAL)


@pytest.fixture
def allow_local_toml(tmp_path: Any) -> None:
    """crm.toml in the directory the ``cli`` fixture runs in, allow-listing the local receiver."""
    (tmp_path / "crm.toml").write_text('[webhooks]\nallow_hosts = ["127.0.0.1"]\n', encoding="utf-8")


class Receiver:
    """A local HTTP receiver; ``fail`` > 0 answers 500 that many times."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(500)
                else:
                    receiver.got.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _, b in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def subscribe(crm: CRM, url: str, events: list[str]) -> int:
    with crm.unit_of_work("admin") as uow:
        sub = WebhookSubscription(url=url, events=events, secret=SECRET, active=True, created_by="admin")
        uow.session.add(sub)
        uow.session.flush()
        return sub.id


def test_events_are_delivered_signed_and_in_order(crm: CRM, receiver: Receiver) -> None:
    subscribe(crm, receiver.url, ["customer.created", "customer.updated"])
    with crm.unit_of_work("anna") as uow:
        c = uow.customers.create(CustomerCreate(name="Acme"))
    with crm.unit_of_work("anna") as uow:
        uow.customers.update(c.id, CustomerUpdate(region="Bavaria"))
    run = deliver(crm)
    assert (run.delivered, run.failed) == (2, 0)
    assert [e["type"] for e in receiver.events()] == ["customer.created", "customer.updated"]
    headers, body = receiver.got[0]
    assert hmac.compare_digest(headers["X-CRM-Signature"], sign(SECRET, body))
    assert headers["X-CRM-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert receiver.events()[1]["data"]["changes"]["region"] == [None, "Bavaria"] and receiver.events()[0]["actor"] == "anna"
    assert deliver(crm).delivered == 0  # delivered once


def test_no_subscription_no_event(crm: CRM) -> None:
    with crm.unit_of_work("anna") as uow:
        uow.customers.create(CustomerCreate(name="Quiet"))
    with crm.unit_of_work("anna", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_failing_receiver_recovers_delivered_once_in_order(crm: CRM, receiver: Receiver) -> None:
    subscribe(crm, receiver.url, ["*"])
    with crm.unit_of_work("anna") as uow:
        c = uow.customers.create(CustomerCreate(name="Retry"))
        uow.customers.update(c.id, CustomerUpdate(region="One"))
    receiver.fail = 1
    first = deliver(crm)
    assert first.failed == 1 and first.delivered == 0 and first.waiting == 1  # "updated" waits behind "created"
    assert deliver(crm).delivered == 0  # not due yet: back-off
    later = utcnow() + dt.timedelta(minutes=5)
    second = deliver(crm, now=later)
    assert second.delivered == 2
    assert [e["type"] for e in receiver.events()] == ["customer.created", "customer.updated"]
    assert deliver(crm, now=later + dt.timedelta(hours=1)).delivered == 0


def test_dead_letter_after_max_attempts(crm: CRM, receiver: Receiver, cli: Callable[..., Any]) -> None:
    subscribe(crm, receiver.url, ["customer.created"])
    with crm.unit_of_work("anna") as uow:
        uow.customers.create(CustomerCreate(name="Doomed"))
    receiver.fail = 100
    now = utcnow()
    for i in range(3):
        deliver(crm, max_attempts=3, now=now + dt.timedelta(days=i))
    with crm.unit_of_work("anna", read_only=True) as uow:
        d = uow.session.scalar(select(WebhookDelivery))
        assert d is not None and d.status == "dead" and d.attempts == 3 and d.last_error == "HTTP 500"
    listed = json.loads(cli("webhooks", "list", "--json").output)
    assert listed["subscriptions"][0]["dead"] == 1 and listed["dead_letters"][0]["event"] == "customer.created"


def test_a_rolled_back_change_sends_nothing(make_crm: Callable[..., CRM], receiver: Receiver) -> None:
    class Hold:
        @staticmethod
        @hookimpl
        def crm_before_transaction_post(uow: Any, account: Any, entry: Any) -> None:
            raise Veto("on hold")

    crm = make_crm(plugins=[("hold", Hold)], config=ALLOW_LOCAL)
    subscribe(crm, receiver.url, ["customer.created", "transaction.posted"])
    with pytest.raises(Exception, match="on hold"), crm.unit_of_work("anna") as uow:
        c = uow.customers.create(CustomerCreate(name="Vetoed"))
        uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount="10", reference="I-1"))
    with crm.unit_of_work("anna", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    assert deliver(crm).delivered == 0 and receiver.got == []


def test_unreachable_receiver_is_retried_not_lost(crm: CRM) -> None:
    subscribe(crm, "http://127.0.0.1:1/nowhere", ["customer.created"])
    with crm.unit_of_work("anna") as uow:
        uow.customers.create(CustomerCreate(name="Later"))
    run = deliver(crm, timeout=2)
    assert run.failed == 1 and "ConnectError" in run.errors[0]
    with crm.unit_of_work("anna", read_only=True) as uow:
        d = uow.session.scalar(select(WebhookDelivery))
        assert d is not None and d.status == "pending" and d.next_attempt_at > utcnow()


def test_webhooks_cli(cli: Callable[..., Any], receiver: Receiver, allow_local_toml: None) -> None:
    r = cli("webhooks", "add", receiver.url, "--event", "customer.created", "--secret", SECRET)
    assert r.exit_code == 0 and "subscription 1" in r.output
    assert cli("customer", "add", "Via CLI").exit_code == 0
    out = cli("webhooks", "deliver")
    assert out.exit_code == 0 and "delivered 1" in out.output
    assert receiver.events()[0]["data"]["name"] == "Via CLI"
    for args, message in ((["webhooks", "add", "ftp://x", "--event", "customer.created"], "http(s) URL"),
                          (["webhooks", "add", receiver.url, "--event", "customer.exploded"], "unknown event type"),
                          (["webhooks", "add", receiver.url, "--event", "*", "--secret", "short"], "16 to 128"),
                          (["webhooks", "remove", "99"], "not found")):
        bad = cli(*args)
        assert bad.exit_code == 1 and message in bad.output, bad.output
    assert cli("webhooks", "remove", "1").exit_code == 0


def test_user_token_cli(cli: Callable[..., Any]) -> None:
    assert cli("user", "add", "tester", "--name", "Tester", "--role", "admin").exit_code == 0
    r = cli("user", "token", "create", "tester", "--name", "shop")
    assert r.exit_code == 0 and r.output.startswith("crm_")
    listed = json.loads(cli("user", "token", "list", "--json").output)
    assert listed[0]["user"] == "tester" and listed[0]["prefix"] == r.output[:10] and "token_hash" not in listed[0]
    assert cli("user", "token", "revoke", str(listed[0]["id"])).exit_code == 0
    assert json.loads(cli("user", "token", "list", "--json").output)[0]["revoked_at"] is not None
    bad = cli("user", "token", "create", "nobody")
    assert bad.exit_code == 1 and "not found" in bad.output


def test_two_runners_at_once_deliver_each_event_once(crm: CRM, receiver: Receiver) -> None:
    subscribe(crm, receiver.url, ["customer.created"])
    for i in range(12):
        with crm.unit_of_work("anna") as uow:
            uow.customers.create(CustomerCreate(name=f"Twice? {i}"))
    runs: list[Any] = []
    threads = [threading.Thread(target=lambda: runs.append(deliver(crm))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.delivered for r in runs) == 12
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == len(set(ids)) == 12
