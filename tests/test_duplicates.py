"""Likely duplicates: keys, scoring, recall and precision on planted near-duplicates (known truth),
refusal on create by the CLI and the Python API, the scan and the merge preview, on both engines."""
from __future__ import annotations

import json

import random
import string
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, update

from crmcore import CRM, Conflict
from crmcore.models import AuditEntry, Customer
from crmcore.models.customer import fold
from crmcore.schemas import ContactCreate, CustomerCreate
from crmcore.services import _duplicates_scan as scan_keys
from crmcore.services import duplicates as dup
from crmcore.services.merge_preview import preview_merge

WORDS = ["alpine", "nordic", "granite", "oak", "river", "summit", "delta", "harbor", "maple", "cedar", "falcon", "orbit", "lumen", "vista", "ember", "prairie", "quartz", "willow", "cobalt", "meadow", "sierra", "tundra", "coral", "aurora", "beacon", "canyon", "frost", "ivory", "jade"]
TRADES = ["kitchens", "flooring", "windows", "roofing", "tiles", "plumbing", "lighting", "doors", "stairs", "cabinets", "paints", "garden", "fencing", "glass", "bathrooms", "heating"]
SYLLABLES = ["ka", "ko", "va", "le", "no", "ri", "ta", "mi", "se", "lu", "da", "be", "ro", "sa", "ne", "vi", "to", "ma", "pe", "gu", "zo", "fi", "ha", "ju", "ne", "xi", "wen", "li", "an", "bor", "dal", "fen", "gar", "hol", "kin", "mor", "nis", "par", "rud", "sten", "tor", "ul", "vel"]
FORMS = ["GmbH", "Inc", "Ltd", "AG", "LLC", "", "", ""]


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: a swap, a dropped, a doubled or a replaced letter."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1:]


def variant(name: str, email: str, phone: str, rng: random.Random) -> tuple[str, str | None, str | None]:
    """A near-duplicate as people enter them: one or two name changes, a contact detail reformatted."""
    words = name.split()
    for change in rng.sample(["typo", "case", "accent", "transpose", "form"], k=rng.choice([1, 2])):
        if change == "typo":
            k = rng.randrange(len(words))
            words[k] = typo(words[k], rng) if len(words[k]) > 3 else words[k]
        elif change == "case":
            words = [w.upper() if rng.random() < 0.5 else w.lower() for w in words]
        elif change == "accent":
            words = [w.replace("e", "é", 1).replace("o", "ö", 1) for w in words]
        elif change == "transpose" and len(words) > 1:
            words[0], words[1] = words[1], words[0]
        elif change == "form":
            words = [w for w in words if w not in FORMS] + [rng.choice(["GmbH", "Ltd.", "Inc."])]
    keep = rng.choice(["email", "phone", "both"])
    digits = phone.removeprefix("+49")
    new_phone = rng.choice([f"0{digits[:2]} {digits[2:]}", f"+49 ({digits[:2]}) {digits[2:5]}-{digits[5:]}", phone])
    return (" ".join(words), email.upper() if keep != "phone" else None, new_phone if keep != "email" else None)


Row = tuple[int, str, str | None, str | None, str]


def planted_rows(n: int, dups: int, seed: int) -> tuple[list[Row], set[tuple[int, int]]]:
    """``n`` distinct companies and ``dups`` near-duplicates of some of them, as they are stored
    (id, name, email, phone, country: raw, the variants' e-mails upper case and phones formatted);
    the true pairs."""
    rng = random.Random(seed)
    names: set[str] = set()
    rows: list[Row] = []
    numbers = iter(rng.sample(range(10**7, 10**8), n))  # distinct lines: a shared one is evidence, rightly
    while len(rows) < n:
        coined = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([2, 3]))).title()  # a name like "Kovaleno"
        name = f"{coined} {rng.choice(WORDS).title()} {rng.choice(TRADES).title()} {rng.choice(FORMS)}".strip()
        if dup.name_key(name) in names:
            continue
        names.add(dup.name_key(name))
        i = len(rows) + 1
        rows.append((i, name, f"office{i}@{rng.choice(WORDS)}{i}.example.com", f"+4930{next(numbers)}", "DE"))
    truth = set()
    for k, original in enumerate(rng.sample(rows[:n], dups)):
        name, email, phone = variant(original[1], original[2] or "", original[3] or "", rng)
        i = n + k + 1
        rows.append((i, name, email, phone, "DE"))
        truth.add((original[0], i))
    return rows, truth


def planted(n: int, dups: int, seed: int) -> tuple[list[dup.Record], set[tuple[int, int]]]:
    """:func:`planted_rows` as records (keys normalised)."""
    rows, truth = planted_rows(n, dups, seed)
    return [dup.record(row) for row in rows], truth


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recall_and_precision_on_planted_near_duplicates(seed: int) -> None:
    records, truth = planted(3000, 300, seed)
    found = {(c.a, c.b) for c in dup.find_candidates(records, dup.DuplicateSettings().model_copy(update={"threshold": 0.7}))}
    recall = len(found & truth) / len(truth)
    precision = len(found & truth) / len(found)
    assert recall >= 0.95, recall
    assert precision >= 0.9, precision


def test_name_and_phone_keys() -> None:
    assert dup.name_key("Alpine Kitchens GmbH") == dup.name_key("kitchens ALPINE") == "alpine kitchens"
    assert dup.name_key("Öztürk Bau AG") == dup.name_key("ozturk bau") == "bau ozturk"
    assert dup.name_key("Straße & Co.") == "strasse"
    assert dup.phone_key("+49 30 1234567") == dup.phone_key("030-1234567") == "301234567"
    assert dup.phone_key("12") is None and dup.email_key(" Info@X.example ") == "info@x.example"


@given(st.text(max_size=80), st.text(max_size=80), st.one_of(st.none(), st.text(max_size=30)),
       st.one_of(st.none(), st.text(max_size=30)))
def test_scoring_any_text_is_bounded_and_symmetric(a: str, b: str, pa: str | None, pb: str | None) -> None:
    ra, rb = dup.record((1, a, pa, pa, None)), dup.record((2, b, pb, pb, "DE"))
    s1, _ = dup.score_pair(ra, rb, dup.DuplicateSettings())
    s2, _ = dup.score_pair(rb, ra, dup.DuplicateSettings())
    assert 0 <= s1 <= 1 and s1 == pytest.approx(s2)


@given(st.lists(st.text(max_size=40), max_size=8), st.lists(st.one_of(st.none(), st.text(max_size=20)), max_size=8))
def test_the_scan_keys_many_at_once_as_one_by_one(names: list[str], phones: list[str | None]) -> None:
    """The column-wise keys (one regex pass over all names, newlines and accents included) are the rules' keys."""
    assert scan_keys.name_keys([fold(n) for n in names], dup.LEGAL_FORMS) == [dup.name_key(n) for n in names]
    assert scan_keys.phone_keys(phones, dup.phone_key) == [dup.phone_key(p) or "" for p in phones]
    assert scan_keys.email_keys(phones) == [dup.email_key(p) or "" for p in phones]


def test_pairs_sharing_a_hash_code_are_checked_on_the_values() -> None:
    """The scan's codes are hashes: a collision (forced here) must not become "same e-mail"."""
    values = ["a@x.example", "b@x.example", "a@x.example", ""]
    code = np.array([7, 7, 7, 0])
    pairs = np.array([0, 0, 0, 1]), np.array([1, 2, 3, 3])
    assert scan_keys.same_value(values, code, *pairs).tolist() == [False, True, False, False]
    assert (scan_keys.hash_codes(values) == 0).tolist() == [False, False, False, True]


def test_a_shared_switchboard_number_is_a_stop_word_skipped_and_reported(crm: CRM) -> None:
    many, rng = dup.MAX_BLOCK + 1, random.Random(3)
    names = sorted({"".join(rng.choice(SYLLABLES) for _ in range(5)).title() for _ in range(2 * many)})[:many]
    with crm.unit_of_work("tester") as uow:
        uow.session.execute(insert(Customer), [
            {"kind": "organization", "name": names[i],
             "phone": "+49 30 9999999", "email": f"b{i}@x{i}.example.com", "country": "DE"} for i in range(many)])
        uow.customers.create(CustomerCreate(name="Alpine Kitchens GmbH", email="info@alpine.example.com"))
        uow.customers.create(CustomerCreate(name="alpine kitchen", email="INFO@alpine.example.com"), force=True)
        uow.session.execute(update(Customer).where(Customer.id == many + 2).values(search_name=""))  # stored unfolded
    with crm.unit_of_work("tester", read_only=True) as uow:
        report = dup.scan_report(uow)
    alpine_pair = [c for c in report.pairs if c.b > many]
    assert [(c.a, c.b, c.evidence) for c in alpine_pair] == [(many + 1, many + 2, ["same e-mail", "similar name (97%)"])]
    # the branches are paired only as neighbours by name (with the phone as evidence), not all with all
    assert len(report.pairs) <= 1 + 2 * dup.WINDOW * many < many * (many - 1) // 2
    assert [str(s) for s in report.skipped] == [f"{many} customers share the phone '309999999': not paired on it (a stop word)"]


def test_stop_words_are_told_by_the_cli_and_the_http_api(crm: CRM, cli: Callable[..., Any]) -> None:
    """A skipped block is a note on stderr (the ``--json`` list on stdout stays a list) and a header."""
    from fastapi.testclient import TestClient

    from crmcore.api import create_app

    many = dup.MAX_BLOCK + 1
    with crm.unit_of_work("tester") as uow:
        uow.session.execute(insert(Customer), [
            {"kind": "organization", "name": f"Branch {i:04d} {'xyzw'[i % 4] * (i % 7 + 3)}",
             "phone": "+49 30 9999999", "email": f"b{i}@x{i}.example.com", "country": "DE"} for i in range(many)])
    note = f"note: {many} customers share the phone '309999999': not paired on it (a stop word)"
    res = cli("customer", "duplicates", "--json")
    assert res.exit_code == 0 and isinstance(json.loads(res.stdout), list), res.output
    assert res.stderr.strip().splitlines() == [note]
    res = cli("customer", "duplicates")
    assert res.exit_code == 0 and note in res.stderr.splitlines()
    from crmcore.schemas import UserCreate
    from crmcore.services.tokens import TokenService

    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        token = TokenService(uow).create("root", "test")[1]
    r = TestClient(create_app(crm)).get("/customers/duplicates", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert r.headers["X-Duplicates-Skipped"] == "1" and "share the phone '309999999'" in r.headers["X-Duplicates-Skipped-Detail"]


def alpine(**extra: Any) -> CustomerCreate:
    return CustomerCreate(name="Alpine Kitchens GmbH", email="info@alpine.example.com", phone="+49 30 1234567",
                          country="DE", external_ref="ALP", **extra)


def test_creating_a_likely_duplicate_is_refused_unless_forced(crm: CRM) -> None:
    with crm.unit_of_work("tester") as uow:
        uow.customers.create(alpine())
    for name, email, phone in [("alpine kitchens", "INFO@alpine.example.com", None),
                               ("Kitchens Alpine", None, "030 1234567")]:
        with pytest.raises(Conflict, match="likely duplicate of customer 1 'Alpine Kitchens GmbH' \\(ALP\\)"), \
                crm.unit_of_work("tester") as uow:
            uow.customers.create(CustomerCreate(name=name, email=email, phone=phone, country="DE"))
    with crm.unit_of_work("tester") as uow:
        assert uow.session.query(Customer).count() == 1  # nothing half-written
        uow.customers.create(CustomerCreate(name="Alpine Kitchens", email="info@alpine.example.com"), force=True)
        uow.customers.create(CustomerCreate(name="Alpine Kitchens GmbH"))  # a name alone is no proof
        assert uow.session.query(Customer).count() == 3


def test_the_check_can_be_switched_off(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(config={"duplicates": {"on_create": "off"}})
    with crm.unit_of_work("tester") as uow:
        uow.customers.create(alpine())
        uow.customers.create(CustomerCreate(name="Alpine Kitchens", email="info@alpine.example.com"))


def test_cli_add_refuses_with_one_line_and_force_creates(crm: CRM, cli: Callable[..., Any]) -> None:
    assert cli("customer", "add", "Alpine Kitchens GmbH", "--email", "info@alpine.example.com", "--ref", "ALP").exit_code == 0
    res = cli("customer", "add", "alpine kitchens", "--email", "Info@Alpine.example.com")
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "likely duplicate of customer 1 'Alpine Kitchens GmbH' (ALP): same e-mail" in res.stderr
    assert cli("customer", "add", "alpine kitchens", "--email", "Info@Alpine.example.com", "--force").exit_code == 0
    res = cli("customer", "duplicates", "--json")
    assert res.exit_code == 0 and '"a": 1' in res.output and '"b": 2' in res.output and "same e-mail" in res.output
    assert cli("customer", "duplicates", "--threshold", "2").exit_code == 2


def test_scan_on_the_database_finds_the_planted_pairs(crm: CRM) -> None:
    rows, truth = planted_rows(300, 30, seed=7)
    with crm.unit_of_work("tester") as uow:
        for _, name, email, phone, country in rows:  # in id order; phones are stored E.164, e-mails as given
            uow.customers.create(CustomerCreate(name=name, email=email, phone=phone, country=country), force=True)
    with crm.unit_of_work("tester", read_only=True) as uow:
        found = {(c.a, c.b) for c in dup.scan(uow)}
    assert len(found & truth) / len(truth) >= 0.95 and len(found & truth) / len(found) >= 0.9


def test_merge_preview_counts_and_writes_nothing(crm: CRM) -> None:
    with crm.unit_of_work("tester") as uow:
        a = uow.customers.create(alpine(industry="Kitchens", tags=["trade"]))
        b = uow.customers.create(CustomerCreate(name="Alpine K.", region="Berlin", tags=["fair"], country="DE",
                                                email="sales@alpine.example.com"), force=True)
        uow.contacts.add(b.id, ContactCreate(name="Jana Novak"))
        a_id, b_id = a.id, b.id
    with crm.unit_of_work("tester", read_only=True) as uow:
        audit_before = uow.session.query(AuditEntry).count()
    with crm.unit_of_work("tester") as uow:
        plan = preview_merge(uow, b_id, a_id)
    assert plan["moved"]["contacts"] == 1 and plan["source"] == b_id and plan["target"] == a_id
    assert plan["fields"]["region"] == {"source": "Berlin", "target": None, "kept": "Berlin", "rule": "filled from source"}
    assert plan["fields"]["email"]["rule"] == "target wins"
    assert plan["fields"]["tags"]["kept"] == ["trade", "fair"]
    with crm.unit_of_work("tester", read_only=True) as uow:
        assert uow.session.query(AuditEntry).count() == audit_before
        assert uow.customers.get(b_id).archived is False
        assert uow.contacts.list(b_id)[0].name == "Jana Novak"


def test_four_processes_adding_the_same_newcomer_create_it_once(crm: CRM, crm_url: str) -> None:
    from crmcore.testing_concurrency import run_cli_in_processes

    commands = [["customer", "add", name, "--email", "info@alpine.example.com"]
                for name in ("Alpine Kitchens GmbH", "alpine kitchens", "ALPINE KITCHENS", "Kitchens Alpine")]
    results = run_cli_in_processes(crm_url, commands)
    assert sorted(r.code for r in results) == [0, 1, 1, 1], [r.stderr for r in results]
    assert all("likely duplicate of customer" in r.stderr for r in results if r.code == 1)
    with crm.unit_of_work("tester", read_only=True) as uow:
        assert uow.session.query(Customer).count() == 1


def test_the_vectorised_scan_agrees_with_the_pairwise_rule() -> None:
    """Over a small set, every pair (not only candidates) scored one by one: the scan finds exactly
    the pairs above the threshold that blocking can reach, and blocking reaches all planted ones."""
    records, truth = planted(150, 25, seed=11)
    settings = dup.DuplicateSettings().model_copy(update={"threshold": 0.7})
    every = {(min(a.id, b.id), max(a.id, b.id)) for x, a in enumerate(records) for b in records[x + 1:]
             if dup.score_pair(a, b, settings)[0] >= 0.7}
    found = {(c.a, c.b) for c in dup.find_candidates(records, settings)}
    assert found <= every and truth <= found
    assert len(every - found) <= 1  # a far pair blocking cannot reach: similar names of unrelated firms


def test_http_api_refuses_a_duplicate_lists_pairs_and_previews_a_merge(make_crm: Callable[..., CRM]) -> None:
    from fastapi.testclient import TestClient

    from crmcore.api import create_app
    from crmcore.api.auth import TokenService
    from crmcore.schemas import UserCreate

    crm = make_crm(config={"visibility": {"sales": "own"}})
    with crm.unit_of_work("setup") as uow:
        for name, role in (("root", "admin"), ("anna", "sales"), ("bob", "sales")):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    tokens = {}
    for name in ("root", "anna", "bob"):
        with crm.unit_of_work("root") as uow:
            tokens[name] = {"Authorization": f"Bearer {TokenService(uow).create(name, 'test')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    body = {"name": "Alpine Kitchens GmbH", "email": "info@alpine.example.com", "external_ref": "ALP"}
    assert client.post("/customers", json=body, headers=tokens["anna"]).status_code == 201
    again = {"name": "alpine kitchens", "email": "INFO@alpine.example.com"}
    r = client.post("/customers", json=again, headers=tokens["bob"])
    assert r.status_code == 409 and "likely duplicate of customer 1:" in r.json()["detail"]  # anna's: no name for bob
    assert "Alpine" not in r.json()["detail"]
    r = client.post("/customers?force=true", json=again, headers=tokens["bob"])
    assert r.status_code == 201
    assert client.get("/customers/duplicates", headers=tokens["bob"]).json() == []  # bob sees only his own
    pairs = client.get("/customers/duplicates", headers=tokens["root"]).json()
    assert pairs[0]["a"] == 1 and pairs[0]["b"] == 2 and "same e-mail" in pairs[0]["evidence"]
    assert client.get("/customers/duplicates?threshold=0", headers=tokens["root"]).status_code == 422
    plan = client.post("/customers/2/merge/preview", json={"into": 1}, headers=tokens["root"]).json()
    assert plan["source"] == 2 and plan["target"] == 1 and "contacts" in plan["moved"]
    assert client.get("/customers/2", headers=tokens["root"]).status_code == 200  # not merged
    assert client.post("/customers/2/merge/preview", json={"into": 1}, headers=tokens["bob"]).status_code == 404


def test_an_import_lists_likely_duplicates_in_its_report_and_imports_them(crm: CRM, cli: Callable[..., Any],
                                                                          tmp_path: Any) -> None:
    with crm.unit_of_work("tester") as uow:
        uow.customers.create(alpine())
    src = tmp_path / "new.csv"
    src.write_text("external_ref,name,email,phone,country\nN1,alpine kitchens,INFO@alpine.example.com,,DE\n"
                   "N2,Nordic Doors,nordic@example.com,,DE\nN3,Nordic Doors Ltd,NORDIC@example.com,,DE\n")
    res = cli("import", "customers", str(src))
    assert res.exit_code == 0, res.stderr
    assert "3 inserted, 0 updated, 0 unchanged, 0 rejected, 2 likely duplicate(s)" in res.output
    report = (tmp_path / "new.csv.errors.csv").read_text().splitlines()
    assert report[1].startswith("2,duplicate,\"likely duplicate of customer 1 'Alpine Kitchens GmbH' (ALP): same e-mail")
    assert report[2].startswith("4,duplicate,\"likely duplicate of customer 3 'Nordic Doors'") and report[2].endswith(",N3")
    res = cli("import", "customers", str(src))  # a re-run changes nothing and warns of nothing new
    assert res.exit_code == 0 and "3 unchanged, 0 rejected in" in res.output
    with crm.unit_of_work("tester", read_only=True) as uow:
        assert uow.session.query(Customer).count() == 4
