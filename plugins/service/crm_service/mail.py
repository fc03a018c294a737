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

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesFeedParser, BytesHeaderParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any, BinaryIO

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


class _Capped:
    """``email.parser.BytesFeedParser`` fed in chunks, refusing beyond ``max_bytes``: the parser
    never holds more than the cap, whatever the caller hands in."""

    CHUNK = 64 * 1024

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.seen = max_bytes, 0
        self.parser = BytesFeedParser(policy=email.policy.default)

    def feed(self, data: bytes) -> None:
        self.seen += len(data)
        if self.seen > self.max_bytes:
            raise InvalidInput(f"mail refused: larger than {self.max_bytes} bytes")
        self.parser.feed(data)

    def close(self) -> EmailMessage:
        msg = self.parser.close()
        assert isinstance(msg, EmailMessage)
        return msg


def read_capped(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` (+1 to tell "too big"), refusing before anything is parsed."""
    chunks, n = [], 0
    while n <= max_bytes:
        chunk = stream.read(min(_Capped.CHUNK, max_bytes + 1 - n))
        if not chunk:
            break
        chunks.append(chunk)
        n += len(chunk)
    if n > max_bytes:
        raise InvalidInput(f"mail refused: larger than {max_bytes} bytes")
    return b"".join(chunks)


def _bounded_message(raw: bytes, max_bytes: int, max_parts: int) -> EmailMessage:
    """Refuse by size and by a cheap count of boundary lines before parsing, then parse capped."""
    if len(raw) > max_bytes:
        raise InvalidInput(f"mail refused: larger than {max_bytes} bytes")
    if raw.count(b"\n--") > 2 * max_parts + 2:
        raise InvalidInput(f"mail refused: more than {max_parts} MIME parts (a mail bomb?)")
    parser = _Capped(max_bytes)
    for i in range(0, len(raw), _Capped.CHUNK):
        parser.feed(raw[i:i + _Capped.CHUNK])
    return parser.close()


def headers_of(raw: bytes) -> tuple[str, str | None]:
    """(From address, Message-ID) from the headers only: cheap, for the duplicate and rate checks
    that come before a full parse."""
    head = re.split(rb"\r?\n\r?\n", raw[:256 * 1024], maxsplit=1)[0]
    msg = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    mid = _ID.findall(str(msg.get("Message-ID", "")))
    return parseaddr(str(msg.get("From", "")))[1].strip().lower(), (mid[0] if mid else None)


def parse(raw: bytes, max_bytes: int, max_parts: int, max_refs: int) -> dict[str, Any]:
    """The parts of a message the ticket needs; refuses what is too big or has no sender."""
    msg = _bounded_message(raw, max_bytes, max_parts)
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
    subject = _clean(str(msg.get("Subject", "")) or "(no subject)")
    return {"sender": sender, "subject": (subject.splitlines() or [""])[0][:200] or "(no subject)",
            "text": _clean(text), "message_id": mid[0] if mid else None, "refs": refs, "attachments": attachments,
            "cc": [a for _, a in getaddresses([str(msg.get("Cc", ""))]) if a][:50]}


def check_rate(uow: UnitOfWork, sender: str, per_hour: int) -> None:
    """At most ``mail_rate_per_hour`` mails accepted per sender in the last hour (a reply bomb)."""
    since = uow.now() - dt.timedelta(hours=1)
    n = uow.session.scalar(select(func.count()).select_from(MailMessage).where(
        MailMessage.sender == sender, MailMessage.received_at > since)) or 0
    if n >= per_hour:
        raise InvalidInput(f"mail refused: {sender} sent {n} mails in the last hour (limit {per_hour}, "
                           "[service] mail_rate_per_hour)")


def _content(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset: decode leniently
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _customer_of(uow: UnitOfWork, address: str) -> int:
    cid = uow.session.scalar(select(Customer.id).where(func.lower(Customer.email) == address, Customer.archived.is_(False))
                             .order_by(Customer.id).limit(1))
    if cid is None:
        cid = uow.session.scalar(select(Contact.customer_id).where(func.lower(Contact.email) == address)
                                 .order_by(Contact.id).limit(1))
    if cid is None:
        raise InvalidInput(f"mail refused: no customer or contact has the address {address}")
    return cid


def receive(uow: UnitOfWork, raw: bytes, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Open a ticket (``defaults``: kind, category, priority, team of a new one) or add the mail to
    the ticket it replies to; the same Message-ID twice is a no-op. Checked in order of cost:
    size, duplicate and per-sender rate (headers only), then the capped full parse."""
    uow.require("service.ticket.write")
    cfg = settings(uow)
    if len(raw) > cfg.mail_max_bytes:
        raise InvalidInput(f"mail refused: larger than {cfg.mail_max_bytes} bytes")
    sender, message_id = headers_of(raw)
    if message_id:
        seen = uow.session.scalar(select(MailMessage).where(MailMessage.message_id == message_id))
        if seen is not None:
            return {"ticket_id": seen.ticket_id, "created": False, "duplicate": True}
    if "@" in sender:
        check_rate(uow, sender, cfg.mail_rate_per_hour)
    m = parse(raw, cfg.mail_max_bytes, cfg.mail_max_parts, cfg.mail_max_references)
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
        data = {k: v for k, v in (defaults or {}).items() if v is not None}
        ticket, _ = tickets.open_ticket(uow, customer_id, TicketOpen(
            subject=m["subject"], description=(m["text"] + listing)[:10000] or None, channel="email", **data))
    else:
        tickets.note(uow, ticket, "mail", (m["text"] + listing)[:10000] or "(empty mail)", {"from": m["sender"]})
        if ticket.status.value == "waiting":  # the customer answered: the clock runs again
            tickets.change_status(uow, ticket.id, "open", reason="customer replied by mail")
    uow.session.add(MailMessage(message_id=m["message_id"] or f"<generated-{ticket.id}-{uow.now().timestamp()}@crm>",
                                ticket_id=ticket.id, sender=m["sender"], received_at=uow.now(),
                                attachments=m["attachments"] or None))
    uow.session.flush()
    return {"ticket_id": ticket.id, "created": created, "duplicate": False, "attachments": m["attachments"]}
