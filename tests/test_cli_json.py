"""``--json`` on the writing commands (account post/open/status, campaign launch/send): the same
fields as the HTTP route, money as a decimal string, nothing printed before the commit."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_marketing.plugin as MARKETING

from crmcore import CRM
from crmcore.schemas import CustomerCreate


def _ok(r: Any) -> Any:
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_account_post_open_status_json(crm: CRM, cli: Callable[..., Any]) -> None:
    with crm.unit_of_work("setup") as uow:
        uow.customers.create(CustomerCreate(name="Json Co", external_ref="J-1"))
    out = _ok(cli("account", "post", "J-1", "invoice", "1234.50", "--ref", "INV-1", "--json"))
    assert out["created"] is True and out["entry"]["amount"] == "1234.50" and out["balance"] == "1234.50"
    assert out["entry"]["reference"] == "INV-1" and out["entry"]["kind"] == "invoice"
    again = _ok(cli("account", "post", "J-1", "invoice", "1234.50", "--ref", "INV-1", "--json"))
    assert again["created"] is False and again["balance"] == "1234.50"
    paid = _ok(cli("account", "post", "J-1", "payment", "0.10", "--ref", "PAY-1", "--json"))
    assert paid["balance"] == "1234.40"  # exact: a decimal string, never 1234.3999999
    opened = _ok(cli("account", "open", "J-1", "--currency", "USD", "--json"))
    assert opened["currency"] == "USD" and opened["balance"] == "0.00"
    held = _ok(cli("account", "status", str(opened["id"]), "on_hold", "--json"))
    assert held["status"] == "on_hold" and held["id"] == opened["id"]
    bad = cli("account", "post", "J-1", "invoice", "-5", "--ref", "INV-2", "--json")
    assert bad.exit_code in (1, 2) and bad.output.count("\n") == 1 and "{" not in bad.output


def test_campaign_launch_and_send_json(make_crm: Callable[..., CRM], cli: Callable[..., Any], tmp_path: Path) -> None:
    crm = make_crm(plugins=[MARKETING])
    with crm.unit_of_work("setup") as uow:
        for i, country in enumerate(("DE", "DE", "FR")):
            uow.customers.create(CustomerCreate(name=f"Shop {i}", email=f"s{i}@shop.example", country=country))
    assert cli("marketing", "segment", "create", "de", "--rule", 'country = "DE"').exit_code == 0
    assert cli("marketing", "consent", "set", "#1", "email", "opt_in").exit_code == 0
    assert cli("marketing", "consent", "set", "#2", "email", "opt_in").exit_code == 0
    r = cli("marketing", "campaign", "create", "spring", "--channel", "email", "--segment", "de", "--subject", "Hi",
            "--body", "Hello {{ customer.name }}")
    assert r.exit_code == 0, r.output
    launched = _ok(cli("marketing", "campaign", "launch", "spring", "--json"))
    assert launched["campaign"] == "spring" and launched["status"] == "running" and launched["targeted"] == 2
    assert launched["contact"] + launched["control"] + launched["suppressed"] == 2
    sent = _ok(cli("marketing", "campaign", "send", "spring", "--outbox", str(tmp_path / "out"), "--json"))
    assert sent["sent"] == launched["contact"] and sent["failed"] == 0 and sent["pending"] == 0
    assert len(list((tmp_path / "out").rglob("*.eml"))) == sent["sent"]


def test_customer_contact_interaction_writes_json(crm: CRM, cli: Callable[..., Any]) -> None:
    added = _ok(cli("customer", "add", "Hall Three GmbH", "--kind", "organization", "--ref", "H-3", "--json"))
    updated = _ok(cli("customer", "update", "H-3", "--email", "info@hall3.example", "--json"))
    assert updated["id"] == added["id"] and updated["email"] == "info@hall3.example" and updated["version"] == added["version"] + 1
    contact = _ok(cli("contact", "add", "H-3", "Jo Buyer", "--role", "decider", "--json"))
    assert contact["customer_id"] == added["id"] and contact["role"] == "decider"
    changed = _ok(cli("contact", "update", str(contact["id"]), "--title", "Head of Purchasing", "--json"))
    assert changed["title"] == "Head of Purchasing" and changed["id"] == contact["id"]
    logged = _ok(cli("interaction", "log", "H-3", "--channel", "meeting", "--subject", "Stand talk", "--ref", "BADGE-9", "--json"))
    assert logged["created"] is True and logged["interaction"]["subject"] == "Stand talk"
    again = _ok(cli("interaction", "log", "H-3", "--channel", "meeting", "--subject", "Stand talk", "--ref", "BADGE-9", "--json"))
    assert again["created"] is False and again["interaction"]["id"] == logged["interaction"]["id"]
    archived = _ok(cli("customer", "archive", "H-3", "--json"))
    assert archived["archived"] is True
    bad = cli("contact", "update", str(contact["id"]), "--role", "emperor", "--json")
    assert bad.exit_code == 1 and "{" not in bad.output and "allowed: initiator" in bad.output  # the service checks the word
