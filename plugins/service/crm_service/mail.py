"""E-mail piping: ``crm service mail < message.eml`` opens a ticket or adds to the one it answers.

Parsed with the standard library (``email.policy.default``). The customer is found by the
sender's address (a customer's or a contact's e-mail). A reply is matched through
``In-Reply-To`` then ``References`` against the Message-IDs already stored. The text is stored,
never rendered: HTML is reduced to plain text (scripts and styles dropped), attachments are
listed by name, type and size, never opened. Work is bounded: a message over
``mail_max_bytes`` (20 MB), with more than ``mail_max_parts`` MIME parts or
``mail_max_references`` references (a mail bomb) is refused with one line, nothing written.
"""
from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import func, select

from crm_service import tickets
from crm_service.models import MailMessage, Ticket
from crm_service.schemas import TicketOpen
from crm_service.settings import settings
from crmcore.errors import InvalidInput
from crmcore.models import Contact, Customer
from crmcore.uow import UnitOfWork

_ID = re.compile(r"<[^<>\s]{1,245}>")


def limit(uow: UnitOfWork) -> int:
    return settings(uow).mail_max_bytes


class _Text(HTMLParser):
    """HTML to text: tags dropped, script/style skipped, block tags as line breaks."""

    BLOCK = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "table", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    p.close()
    text = "".join(p.out)
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t\r\f\v]+", " ", text)).strip()


def _clean(text: str) -> str:
    return "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)[:10000].strip()


def parse(raw: bytes, max_bytes: int, max_parts: int, max_refs: int) -> dict[str, Any]:
    """The parts of a message the ticket needs; refuses what is too big or has no sender."""
    if len(raw) > max_bytes:
        raise InvalidInput(f"mail refused: larger than {max_bytes} bytes")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    sender = parseaddr(str(msg.get("From", "")))[1].strip().lower()
    if "@" not in sender:
        raise InvalidInput("mail refused: no sender address (From)")
    refs = _ID.findall(" ".join(str(msg.get(h, "")) for h in ("In-Reply-To", "References")))
    if len(refs) > max_refs:
        raise InvalidInput(f"mail refused: {len(refs)} references (more than {max_refs}: a mail bomb?)")
    parts, body, html, attachments = 0, None, None, []
    for part in msg.walk():
        parts += 1
        if parts > max_parts:
            raise InvalidInput(f"mail refused: more than {max_parts} MIME parts (a mail bomb?)")
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            payload = part.get_payload(decode=True) or b""
            attachments.append({"name": _clean(part.get_filename() or "(unnamed)")[:200],
                                "type": part.get_content_type(), "bytes": len(payload)})
        elif part.get_content_type() == "text/plain" and body is None:
            body = _content(part)
        elif part.get_content_type() == "text/html" and html is None:
            html = _content(part)
    text = body if body is not None else html_to_text(html) if html is not None else ""
    mid = _ID.findall(str(msg.get("Message-ID", "")))
    return {"sender": sender, "subject": _clean(str(msg.get("Subject", "")) or "(no subject)").splitlines()[0][:200] or "(no subject)",
            "text": _clean(text), "message_id": mid[0] if mid else None, "refs": refs, "attachments": attachments,
            "cc": [a for _, a in getaddresses([str(msg.get("Cc", ""))]) if a][:50]}


def _content(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset: decode leniently
        return (part.get_payload(decode=True) or b"").decode("utf-8", "replace")


def _customer_of(uow: UnitOfWork, address: str) -> int:
    cid = uow.session.scalar(select(Customer.id).where(func.lower(Customer.email) == address, Customer.archived.is_(False))
                             .order_by(Customer.id).limit(1))
    if cid is None:
        cid = uow.session.scalar(select(Contact.customer_id).where(func.lower(Contact.email) == address)
                                 .order_by(Contact.id).limit(1))
    if cid is None:
        raise InvalidInput(f"mail refused: no customer or contact has the address {address}")
    return cid


def receive(uow: UnitOfWork, raw: bytes) -> dict[str, Any]:
    """Open a ticket or add the mail to the ticket it replies to; the same Message-ID twice is a no-op."""
    uow.require("service.ticket.write")
    cfg = settings(uow)
    m = parse(raw, cfg.mail_max_bytes, cfg.mail_max_parts, cfg.mail_max_references)
    if m["message_id"]:
        seen = uow.session.scalar(select(MailMessage).where(MailMessage.message_id == m["message_id"]))
        if seen is not None:
            return {"ticket_id": seen.ticket_id, "created": False, "duplicate": True}
    customer_id = _customer_of(uow, m["sender"])
    ticket = None
    if m["refs"]:
        ids = list(reversed(m["refs"]))  # In-Reply-To first, then the latest references
        found = uow.session.scalar(select(MailMessage.ticket_id).join(Ticket, Ticket.id == MailMessage.ticket_id)
                                   .where(MailMessage.message_id.in_(ids), Ticket.customer_id == customer_id).limit(1))
        ticket = tickets.get(uow, found, lock=True) if found else None
    created = ticket is None
    listing = "".join(f"\n[attachment: {a['name']} ({a['type']}, {a['bytes']} bytes)]" for a in m["attachments"])
    if ticket is None:
        ticket, _ = tickets.open_ticket(uow, customer_id, TicketOpen(
            subject=m["subject"], description=(m["text"] + listing)[:10000] or None, channel="email"))
    else:
        tickets.note(uow, ticket, "mail", (m["text"] + listing)[:10000] or "(empty mail)", {"from": m["sender"]})
        if ticket.status.value == "waiting":  # the customer answered: the clock runs again
            tickets.change_status(uow, ticket.id, "open", reason="customer replied by mail")
    uow.session.add(MailMessage(message_id=m["message_id"] or f"<generated-{ticket.id}-{uow.now().timestamp()}@crm>",
                                ticket_id=ticket.id, sender=m["sender"], received_at=uow.now(),
                                attachments=m["attachments"] or None))
    uow.session.flush()
    return {"ticket_id": ticket.id, "created": created, "duplicate": False, "attachments": m["attachments"]}
