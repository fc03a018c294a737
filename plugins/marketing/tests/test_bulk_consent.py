"""``crm import consent`` / ``customer_consent`` and their exports through the core bulk path."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crm_marketing import people, services
from crm_marketing.models import Consent, ContactConsent
from crm_marketing.schemas import ConsentSet
from crm_marketing.testing import Shop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.models import AuditEntry
from crmcore.schemas import ContactCreate

T = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture
def fair(shop: Shop, mcrm: CRM) -> dict[str, int]:
    ids = {"ACME": shop.customer("ACME", kind="organization", country="DE"),
           "OLD": shop.customer("OLD", kind="organization", country="DE")}
    with mcrm.unit_of_work("test") as uow:
        for ref, cust in (("ANNA", "ACME"), ("BEN", "ACME"), ("OTTO", "OLD")):
            ids[ref] = uow.contacts.add(ids[cust], ContactCreate(name=ref.title(), external_ref=ref, role="decider")).id
        people.set_contact_consent(uow, ids["BEN"], ConsentSet(channel="sms", status="opt_in", at=T))
    with mcrm.unit_of_work("test") as uow:
        uow.customers.archive(ids["OLD"])
    return ids


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_import_people_consent_with_bad_rows(mcli: Callable[..., Any], mcrm: CRM, fair: dict[str, int], tmp_path: Path) -> None:
    f = tmp_path / "consent.csv"
    f.write_text("contact_ref,email,sms,at,source\n"
                 "ANNA,opt_in,opt_out,2025-06-02,fair form\n"    # 2: new, two channels
                 "BEN,,opt_out,2025-05-01,\n"                    # 3: older than BEN's stored sms opt-in
                 "NOBODY,opt_in,,,\n"                            # 4: unknown contact
                 "ANNA,opt_out,,,\n"                             # 5: the same person twice in a file
                 "C6,maybe,,,\n"                                 # 6: not a status
                 "C7,,,,\n"                                      # 7: no channel at all
                 "C8,,,2999-01-01,\n"                            # 8: in the future (and no channel)
                 "OTTO,opt_in,,,\n", encoding="utf-8")           # 9: of an archived customer
    r = mcli("import", "consent", str(f))
    assert r.exit_code == 1, r.output
    assert "1 inserted" in r.output and "7 rejected" in r.output, r.output
    errors = list(csv.reader(io.StringIO((tmp_path / "consent.csv.errors.csv").read_text(encoding="utf-8"))))[1:]
    by_line = {int(e[0]): e for e in errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9]  # one line each
    assert "newer sms consent" in by_line[3][2] and "unknown contact 'NOBODY'" in by_line[4][2]
    assert "duplicate" in by_line[5][2] and "opt_in" in by_line[6][2] and "at least one channel" in by_line[7][2]
    assert "archived" in by_line[9][2]
    with mcrm.unit_of_work("test", read_only=True) as uow:
        anna = {c.channel: (c.status, c.source) for c in people.contact_consents(uow, fair["ANNA"])}
        assert anna == {"email": ("opt_in", "fair form"), "sms": ("opt_out", "fair form")}
        assert people.contact_consents(uow, fair["BEN"])[0].status == "opt_in"
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "contact", AuditEntry.action == "consent", AuditEntry.entity_id == str(fair["ANNA"]))) == 1
    again = mcli("import", "consent", str(f))
    assert "0 inserted" in again.output and "1 unchanged" in again.output  # a re-import changes nothing

    out = tmp_path / "out.csv"
    ok(mcli("export", "consent", "-o", str(out)))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["contact_ref"], r["email"], r["sms"]) for r in rows] == [("ANNA", "opt_in", "opt_out"), ("BEN", "", "opt_in")]
    ok(mcli("import", "consent", str(out)))  # the export imports back unchanged
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(ContactConsent)) == 3


def test_import_company_consent(mcli: Callable[..., Any], mcrm: CRM, fair: dict[str, int], tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text('{"customer_ref": "ACME", "email": "opt_in", "at": "2025-06-02"}\n'
                 '{"customer_ref": "ZZZ", "email": "opt_in"}\n', encoding="utf-8")
    r = mcli("import", "customer_consent", str(f))
    assert r.exit_code == 1 and "1 inserted" in r.output and "1 rejected" in r.output, r.output
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert [(c.channel, c.status) for c in services.consents(uow, fair["ACME"])] == [("email", "opt_in")]
        assert uow.session.scalar(select(func.count()).select_from(Consent)) == 1


def test_a_person_unsubscribed_by_import_beats_the_company(mcli: Callable[..., Any], mcrm: CRM, fair: dict[str, int],
                                                          tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("customer_ref,email\nACME,opt_in\n", encoding="utf-8")
    ok(mcli("import", "customer_consent", str(f)))
    f.write_text("contact_ref,email\nANNA,unsubscribed\n", encoding="utf-8")
    ok(mcli("import", "consent", str(f)))
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert not people.effective_consent(uow, fair["ANNA"], "email").allowed
        assert people.effective_consent(uow, fair["BEN"], "email").allowed


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(ref=st.text(max_size=80), status=st.text(max_size=20), source=st.text(max_size=150))
def test_free_text_cells_are_written_or_rejected_never_crash(mcli: Callable[..., Any], mcrm: CRM, fair: dict[str, int],
                                                             tmp_path: Path, ref: str, status: str, source: str) -> None:
    f = tmp_path / "h.csv"
    buf = io.StringIO()
    csv.writer(buf).writerows([["contact_ref", "email", "source"], [ref, status, source]])
    f.write_text(buf.getvalue(), encoding="utf-8", errors="surrogatepass")
    r = mcli("import", "consent", str(f))
    assert r.exit_code in (0, 1, 2) and "Traceback" not in r.output, r.output
    with mcrm.unit_of_work("test", read_only=True) as uow:
        stored = {c.status for c in uow.session.scalars(select(ContactConsent).where(ContactConsent.channel == "email"))}
        assert stored <= {"opt_in", "opt_out", "unsubscribed"}
