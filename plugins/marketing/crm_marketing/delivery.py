"""Templates, channel adapters and the resumable send.

Templates run in Jinja2's ImmutableSandboxedEnvironment with StrictUndefined and a render budget
(:mod:`crm_marketing.sandbox`: time, steps, size), over plain dicts of the customer's fields
(never ORM objects): customer data and template text cannot reach Python internals
(``{{ ''.__class__ }}`` is refused, through a filter too), cannot run for ever or fill the memory,
and a misspelt field is an error, not an empty string in ten thousand mails. The budget is
checked when a template is saved and again for each message.

A message that cannot be built (a template error, a subject that renders a line break, a
header the mail library refuses) marks its target ``failed`` with the reason; nothing is
written to the outbox for it and nothing stays ``sending``.

Sending is at-most-once per customer. A send claims a small batch of ``pending`` targets
(status ``sending``, committed), delivers each through the adapter, and commits each delivery
with its core interaction (status ``sent``). An error or Ctrl-C puts the unsent claims back to
``pending``; only a hard kill can leave claims ``sending`` ("in doubt": maybe delivered). A
re-run resumes with the pending ones and reports the in-doubt ones; an adapter that can tell
whether a message went out (the file adapter can) settles them, others need
``--resend-in-doubt`` (an explicit choice to risk a second contact).
"""
from __future__ import annotations

import os
import smtplib
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

from jinja2 import TemplateError
from jinja2.sandbox import SecurityError
from sqlalchemy import and_, func, select, update

from crm_marketing import sandbox
from crm_marketing.models import Campaign, Target, Variant
from crm_marketing.schemas import MarketingSettings
from crmcore.db.types import utcnow
from crmcore.errors import ConfigError, Conflict, CRMError, InvalidInput
from crmcore.models import Customer
from crmcore.schemas import InteractionCreate
from crmcore.sdk import CRM, text_problem
from crmcore.uow import UnitOfWork

MAX_SUBJECT = 500  # a rendered subject: one line (RFC 5322 allows 998 characters per line)
TEMPLATE_FIELDS = ("name", "email", "phone", "country", "region", "industry", "external_ref", "kind")
CORE_CHANNEL = {"email": "email", "sms": "sms", "phone": "phone", "mail": "mail", "event": "event",
                "social": "web", "ads": "other"}


class _AnyAttributes(dict[str, Any]):
    """Custom attributes differ per customer: any name is accepted when a template is checked
    (each message is rendered strictly again at send time)."""

    def __missing__(self, key: str) -> str:
        return "x"


def _sample_context() -> dict[str, Any]:
    from crm_marketing.people import CONTACT_FIELDS

    return {"customer": dict.fromkeys(TEMPLATE_FIELDS, "x") | {"attributes": _AnyAttributes(), "tags": []},
            "campaign": {"name": "x", "objective": "x"}, "contact": dict.fromkeys(CONTACT_FIELDS, "x")}


def _refusal(e: BaseException, label: str, prefix: str) -> InvalidInput | None:
    """The one-line InvalidInput for a render that must be refused whatever the data, else None."""
    if isinstance(e, sandbox.BudgetExceeded):
        return InvalidInput(f"{prefix} ({label}): over the render budget: {e}", [(label, "budget")])
    if isinstance(e, SecurityError):
        return InvalidInput(f"{prefix} ({label}): not allowed in a template: {e}", [(label, "unsafe")])
    if isinstance(e, (RecursionError, MemoryError)):
        return InvalidInput(f"{prefix} ({label}): over the render budget: nested too deeply or too large",
                            [(label, "budget")])
    if isinstance(e, TemplateError):
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return InvalidInput(f"{prefix} ({label}): {msg[:300]}", [(label, "template")])
    return None


def check_template(text: str, label: str) -> None:
    """Refuse a template that does not compile, reaches for what the sandbox forbids, or goes
    over the render budget with sample data (checked again for each message at send)."""
    try:
        out = sandbox.render(text, _sample_context())
    except (ArithmeticError, TypeError, ValueError, LookupError):
        return  # depends on each customer's data (checked when each message is rendered)
    except Exception as e:  # noqa: BLE001 - every other failure is one clear line
        raise (_refusal(e, label, "invalid template")
               or InvalidInput(f"invalid template ({label}): {type(e).__name__}", [(label, "template")])) from None
    problem = text_problem(out.strip(), MAX_SUBJECT) if label.endswith("subject") else None
    if problem:
        raise InvalidInput(f"invalid template ({label}): the subject {problem} (a subject is one line)", [(label, "not one line")])


def render(text: str | None, context: dict[str, Any], label: str) -> str:
    """One message's part, under the render budget; any failure is one InvalidInput line."""
    if not text:
        return ""
    try:
        return sandbox.render(text, context)
    except Exception as e:  # noqa: BLE001 - a template failure fails this message, with its reason
        raise (_refusal(e, label, "template")
               or InvalidInput(f"template ({label}) failed: {type(e).__name__}: {str(e)[:200]}", [(label, "template")])) from None


@dataclass
class Message:
    campaign_id: int
    campaign_name: str
    customer_id: int
    channel: str
    address: str | None
    subject: str
    body: str
    message_id: str = ""
    contact_id: int | None = None  # a campaign addressed to people: the person this message is for


class ChannelAdapter(Protocol):
    """What a delivery channel implements. ``delivered`` may return None when it cannot tell."""

    name: str

    def open(self) -> None: ...
    def send(self, message: Message) -> None: ...
    def delivered(self, message: Message) -> bool | None: ...
    def close(self) -> None: ...


@dataclass
class FileAdapter:
    """Writes each message as an RFC 5322 file into ``outbox/<campaign>/`` (dry runs, print shops)."""

    outbox: Path
    name: str = "file"

    def _path(self, m: Message) -> Path:
        person = "" if m.contact_id is None else f"-contact-{m.contact_id}"
        return self.outbox / f"campaign-{m.campaign_id}" / f"customer-{m.customer_id}{person}.eml"

    def open(self) -> None:
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot use outbox {self.outbox}: {e.strerror or e}") from None

    def send(self, m: Message) -> None:
        path = self._path(m)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = to_email(m, "crm@localhost").as_bytes()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # a message file is whole or absent
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delivered(self, m: Message) -> bool | None:
        return self._path(m).exists()

    def close(self) -> None:
        pass


@dataclass
class SMTPAdapter:
    """Real SMTP through the standard library (one connection per send run)."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    name: str = "smtp"
    _conn: smtplib.SMTP | None = field(default=None, repr=False)

    def open(self) -> None:
        try:
            self._conn = smtplib.SMTP(self.host, self.port, timeout=30)
            if self.starttls:
                self._conn.starttls()
            if self.user:
                self._conn.login(self.user, self.password or "")
        except (OSError, smtplib.SMTPException) as e:
            raise ConfigError(f"cannot reach the SMTP server {self.host}:{self.port}: {e}") from None

    def send(self, m: Message) -> None:
        if not m.address:
            raise InvalidInput("no address")
        assert self._conn is not None
        self._conn.send_message(to_email(m, self.sender))

    def delivered(self, m: Message) -> bool | None:
        return None  # SMTP cannot tell afterwards whether a message went out

    def close(self) -> None:
        if self._conn is not None:
            with suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
            self._conn = None


def to_email(m: Message, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = m.address or "undisclosed-recipients:;"
    msg["Subject"] = m.subject.replace("\n", " ").replace("\r", " ")
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = m.message_id or make_msgid()
    msg["X-CRM-Campaign"] = str(m.campaign_id)
    msg.set_content(m.body or "")
    return msg


def adapters(crm: CRM, s: MarketingSettings, outbox: Path | None = None) -> dict[str, Callable[[], ChannelAdapter]]:
    """The built-in adapters plus those other plugins register through ``marketing_channel_adapters``."""
    found: dict[str, Callable[[], ChannelAdapter]] = {
        "file": lambda: FileAdapter(outbox or Path(s.outbox)),
        "smtp": lambda: SMTPAdapter(s.smtp_host, s.smtp_port, s.smtp_sender, s.smtp_starttls, s.smtp_user, s.smtp_password),
    }
    registered: list[tuple[str, Any]] = []
    for _plugin, _result in crm.hooks.call_with_names("marketing_channel_adapters",
                                                      register=lambda name, factory: registered.append((name, factory))):
        pass
    for name, factory in registered:
        found.setdefault(str(name), factory)
    return found


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # suppressed since the launch (consent withdrawn, customer archived)
    settled: int = 0  # in-doubt claims found delivered
    in_doubt: int = 0
    pending: int = 0
    failed_before: int = 0  # targets that failed in earlier runs (the first ten reasons are in errors)
    errors: list[str] = field(default_factory=list)


def _context(customer: Customer, campaign: Campaign) -> dict[str, Any]:
    c = {f: getattr(customer, f) for f in TEMPLATE_FIELDS}
    c["kind"] = str(c["kind"])
    c["attributes"] = dict(customer.attributes or {})
    c["tags"] = list(customer.tags or [])
    return {"customer": c, "campaign": {"name": campaign.name, "objective": campaign.objective or ""}}


def _message(uow: UnitOfWork, campaign: Campaign, target: Target) -> Message:
    customer = uow.customers.get(target.customer_id)
    variant = uow.session.get(Variant, target.variant_id) if target.variant_id else None
    ctx = _context(customer, campaign)
    if getattr(target, "contact_id", None) is not None:  # addressed to a person: {{ contact.name }} and the like
        from crm_marketing.people import contact_context

        ctx["contact"] = contact_context(uow, target.contact_id)  # type: ignore[attr-defined]
    subject = render((variant and variant.subject) or campaign.subject or campaign.name, ctx, "subject").strip()
    body = render((variant and variant.body) or campaign.body, ctx, "body")
    problem = text_problem(subject, MAX_SUBJECT)
    if problem:  # a header line break would be cut or smuggle headers in; refused, never "fixed"
        raise InvalidInput(f"the subject {problem} (a subject is one line of at most {MAX_SUBJECT} characters)",
                           [("subject", "not one line")])
    problem = text_problem(body, None, multiline=True)
    if problem:
        raise InvalidInput(f"the body {problem}", [("body", "control character")])
    m = Message(campaign.id, campaign.name, customer.id, campaign.channel, target.address, subject, body,
                message_id=f"<mkt-{campaign.id}-{customer.id}@crm>")
    try:
        to_email(m, "crm@localhost")  # what the mail library refuses fails here, before anything is written
    except Exception as e:  # noqa: BLE001 - any refusal of the mail library is this message's failure
        raise InvalidInput(f"the message cannot be built: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                           [("message", "cannot be built")]) from None
    return m


def _suppressed_now(uow: UnitOfWork, campaign: Campaign, customer_id: int) -> str | None:
    """Why this customer may no longer be contacted (checked again right before each message)."""
    from crm_marketing.models import Consent
    from crm_marketing.services import settings

    customer = uow.session.get(Customer, customer_id)
    if customer is None or customer.archived:
        return "customer archived"
    consent = uow.session.get(Consent, (customer_id, campaign.channel))
    if consent is not None and consent.status in ("opt_out", "unsubscribed"):
        return f"consent: {consent.status}"
    if campaign.channel in settings(uow).consent_required and (consent is None or consent.status != "opt_in"):
        return "consent: no opt-in"
    return None


def _skip(crm: CRM, actor: str, campaign_id: int, customer_id: int, reason: str) -> None:
    with crm.unit_of_work(actor=actor) as uow:
        target = uow.session.get(Target, (campaign_id, customer_id))
        assert target is not None
        target.status, target.reason = "skipped", reason[:100]


def _claim(crm: CRM, actor: str, campaign_id: int, n: int, model: Any = Target, key: str = "customer_id") -> list[int]:
    """Mark up to ``n`` pending targets as ``sending`` and commit; returns the claimed keys (customer ids; contact ids for ``ContactTarget``).

    The UPDATE's ``status = 'pending'`` condition is re-checked by the database for each row, so two
    senders never claim the same customer (PostgreSQL re-evaluates it after a concurrent update;
    SQLite runs one writer at a time).
    """
    col = getattr(model, key)
    with crm.unit_of_work(actor=actor) as uow:
        ids = list(uow.session.scalars(select(col).where(
            model.campaign_id == campaign_id, model.status == "pending").order_by(col).limit(n)))
        if not ids:
            return []
        res = uow.session.execute(update(model).where(
            model.campaign_id == campaign_id, col.in_(ids), model.status == "pending")
            .values(status="sending", claimed_at=utcnow()).returning(col))
        return sorted(r[0] for r in res)


def _release(crm: CRM, actor: str, campaign_id: int, ids: list[int], model: Any = Target, key: str = "customer_id") -> None:
    """Claims not sent (an error, Ctrl-C) go back to pending."""
    if ids:
        col = getattr(model, key)
        with crm.unit_of_work(actor=actor) as uow:
            uow.session.execute(update(model).where(model.campaign_id == campaign_id, col.in_(ids),
                                                    model.status == "sending").values(status="pending"))


def _record(crm: CRM, actor: str, campaign_id: int, customer_id: int, message: Message, error: str | None) -> None:
    """Commit one delivery: the core interaction (outbound, channel, campaign reference) and the target's state."""
    with crm.unit_of_work(actor=actor) as uow:
        target = uow.session.get(Target, (campaign_id, customer_id))
        assert target is not None
        if error is not None:
            target.status, target.error = "failed", error[:500]
            return
        interaction = uow.interactions.log(customer_id, InteractionCreate(
            channel=CORE_CHANNEL[message.channel], direction="outbound", kind="marketing",
            subject=(message.subject.strip() or message.campaign_name)[:200], source="marketing",
            source_ref=f"campaign:{campaign_id}", external_ref=f"mkt-{campaign_id}-{customer_id}"))
        target.status, target.sent_at, target.interaction_id, target.error = "sent", utcnow(), interaction.id, None


def send(crm: CRM, actor: str, campaign_key: str, adapter_name: str, *, outbox: Path | None = None,
         limit: int | None = None, resend_in_doubt: bool = False,
         progress: Callable[[int], None] | None = None) -> SendResult:
    """Deliver a running campaign's pending messages (see the module docstring for the guarantees)."""
    from crm_marketing import services

    with crm.unit_of_work(actor=actor) as uow:
        uow.require("marketing.campaign.send")
        campaign = services.get_campaign(uow, campaign_key)
        if campaign.status != "running":
            raise Conflict(f"campaign {campaign.name!r} is {campaign.status}; launch it before sending"
                           if campaign.status in ("draft", "scheduled") else
                           f"campaign {campaign.name!r} is {campaign.status}; nothing more is sent")
        cid, s, to_people = campaign.id, services.settings(uow), bool(campaign.to_roles)
        failed_before = _count(uow, cid, "failed")
        earlier = [f"customer {i}: failed in an earlier run: {e or 'no reason recorded'}" for i, e in uow.session.execute(
            select(Target.customer_id, Target.error).where(Target.campaign_id == cid, Target.status == "failed")
            .order_by(Target.customer_id).limit(10))]
    factories = adapters(crm, s, outbox)
    if adapter_name not in factories:
        raise InvalidInput(f"unknown channel adapter {adapter_name!r} (known: {', '.join(sorted(factories))})",
                           [("adapter", "unknown")])
    if to_people:  # addressed to contacts by role: the people are the delivery units (people_campaigns.py)
        from crm_marketing.people_campaigns import send_people

        return send_people(crm, actor, cid, factories[adapter_name], s, limit=limit, progress=progress,
                           resend_in_doubt=resend_in_doubt)
    adapter = factories[adapter_name]()
    adapter.open()
    result = SendResult()
    try:
        _settle_in_doubt(crm, actor, cid, adapter, resend_in_doubt, s.claim_timeout_minutes, result)
        while limit is None or result.sent + result.failed < limit:
            want = s.send_batch if limit is None else min(s.send_batch, limit - result.sent - result.failed)
            claimed = _claim(crm, actor, cid, want)
            if not claimed:
                break
            todo = list(claimed)
            try:
                while todo:
                    customer_id = todo.pop(0)  # from here on this claim is never put back: no second contact
                    _deliver(crm, actor, cid, customer_id, adapter, result)
                    if progress:
                        progress(1)
            finally:
                _release(crm, actor, cid, todo)  # an error or Ctrl-C: unsent claims go back to pending
    finally:
        adapter.close()
    with crm.unit_of_work(actor=actor, read_only=True) as uow:
        result.pending = _count(uow, cid, "pending")
        result.failed_before = failed_before
        result.in_doubt = len(list(uow.session.scalars(select(Target.customer_id).where(
            Target.campaign_id == cid, Target.status == "sending", Target.claimed_at <= utcnow() - timedelta(
                minutes=s.claim_timeout_minutes)))))
    result.errors.extend(earlier)
    return result
def _count(uow: UnitOfWork, cid: int, status: str) -> int:
    return uow.session.scalar(select(func.count()).select_from(Target).where(
        Target.campaign_id == cid, Target.status == status)) or 0


def _deliver(crm: CRM, actor: str, cid: int, customer_id: int, adapter: ChannelAdapter, result: SendResult) -> None:
    """One claimed target: skipped, sent or failed (with the reason); never left ``sending`` by a
    message that cannot be built or an adapter that refuses it."""
    with crm.unit_of_work(actor=actor, read_only=True) as uow:
        campaign = uow.session.get(Campaign, cid)
        target = uow.session.get(Target, (cid, customer_id))
        skip = _suppressed_now(uow, campaign, customer_id)  # type: ignore[arg-type]
        message, error = None, None
        if skip is None:
            try:
                message = _message(uow, campaign, target)  # type: ignore[arg-type]
            except Exception as e:  # noqa: BLE001 - a template error fails this customer, not the run
                error = e.args[0] if isinstance(e, CRMError) else f"template failed: {type(e).__name__}: {e}"
    if skip is not None:
        _skip(crm, actor, cid, customer_id, skip)
        result.skipped += 1
        return
    if message is not None:
        try:
            adapter.send(message)
        except Exception as e:  # noqa: BLE001 - the adapter refused this message: failed with its reason
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    try:
        _record(crm, actor, cid, customer_id, message or Message(cid, "", customer_id, "", None, "", ""), error)
    except Exception as e:  # noqa: BLE001 - sent but not recorded: left "sending", i.e. in doubt, never resent blindly
        result.errors.append(f"customer {customer_id}: sent, but recording it failed: {type(e).__name__}: {e}")
        return
    if error is None:
        result.sent += 1
    else:
        result.failed += 1
        result.errors.append(f"customer {customer_id}: {error}")


def _settle_in_doubt(crm: CRM, actor: str, cid: int, adapter: ChannelAdapter, resend: bool, timeout_minutes: float,
                     result: SendResult) -> None:
    """Claims left ``sending`` by a killed run: settled by the adapter if it can tell, else resent on request.

    Only claims older than ``claim_timeout_minutes`` count: a younger one belongs to a sender that
    is still running, and taking it over would contact its customers twice. A claim whose message
    can no longer be built is asked about by address alone; if it was not delivered (or is to be
    resent) it fails with the reason, since it cannot be sent.
    """
    stale = utcnow() - timedelta(minutes=timeout_minutes)
    with crm.unit_of_work(actor=actor, read_only=True) as uow:
        stuck = list(uow.session.scalars(select(Target).where(and_(
            Target.campaign_id == cid, Target.status == "sending", Target.claimed_at <= stale))))
        campaign = uow.session.get(Campaign, cid)
        assert campaign is not None
        messages: list[tuple[int, Message, str | None]] = []
        for t in stuck:
            try:
                messages.append((t.customer_id, _message(uow, campaign, t), None))
            except Exception as e:  # noqa: BLE001 - reported on the target below
                reason = e.args[0] if isinstance(e, CRMError) else f"{type(e).__name__}: {e}"
                messages.append((t.customer_id, Message(cid, campaign.name, t.customer_id, campaign.channel, t.address,
                                                        "", "", message_id=f"<mkt-{cid}-{t.customer_id}@crm>"), reason))
    for customer_id, message, error in messages:
        known = adapter.delivered(message)
        if known:
            _record(crm, actor, cid, customer_id, message, None)
            result.settled += 1
        elif error is not None and (known is False or resend):
            _record(crm, actor, cid, customer_id, message, error)
            result.failed += 1
            result.errors.append(f"customer {customer_id}: {error}")
        elif known is False or resend:
            _release(crm, actor, cid, [customer_id])


__all__ = ["ChannelAdapter", "FileAdapter", "Message", "SMTPAdapter", "SendResult", "check_template", "send"]
