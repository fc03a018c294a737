"""crm.toml ``[vocabularies]``: defaults, validation at open, words in use, the refusal message."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crmcore import CRM, InvalidInput
from crmcore import vocabularies as vocab
from crmcore.enums import ContactRole, InteractionKind
from crmcore.errors import ConfigError
from crmcore.schemas import ContactCreate, CustomerCreate, InteractionCreate

ROLES = [r.value for r in ContactRole]


def test_defaults_are_the_values_of_today(crm: CRM) -> None:
    v = vocab.of(crm)
    assert v.allowed("contact_roles") == tuple(ROLES)
    assert v.allowed("interaction_kinds") == tuple(k.value for k in InteractionKind)
    assert vocab.of(crm) is v  # validated once per CRM
    assert v.check("contact_roles", " Decider ", "role") == "decider"
    assert v.check("contact_roles", None, "role") is None


def test_crm_toml_adds_a_word(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(config={"vocabularies": {"contact_roles": [*ROLES, "buyer"]}})
    v = vocab.of(crm)
    assert v.check("contact_roles", "buyer", "role") == "buyer"
    assert v.allowed("interaction_kinds") == tuple(k.value for k in InteractionKind)  # the others keep their defaults


def test_a_word_outside_the_vocabulary_is_one_line_naming_the_allowed_words(crm: CRM) -> None:
    with pytest.raises(InvalidInput) as e:
        vocab.of(crm).check("contact_roles", "buyer", "role")
    assert str(e.value) == ("invalid input: role: 'buyer' is not allowed (allowed: initiator, user, influencer, decider, "
                            "gatekeeper; configured in crm.toml [vocabularies] contact_roles)")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("section", "message"), [
    ({"contact_role": ["buyer"]}, "crm.toml [vocabularies]: unknown vocabulary 'contact_role' (known: "),
    ({"contact_roles": "buyer"}, "crm.toml [vocabularies] contact_roles must be a non-empty list of words"),
    ({"contact_roles": []}, "crm.toml [vocabularies] contact_roles must be a non-empty list of words"),
    ({"contact_roles": ["decider", "Key Buyer"]}, "contact_roles: 'Key Buyer' is not a word (lowercase letters"),
    ({"contact_roles": ["decider", 7]}, "contact_roles: 7 is not a word"),
    ({"contact_roles": ["decider", "decider"]}, "contact_roles: 'decider' is listed twice"),
])
def test_a_malformed_table_is_refused_at_open(make_crm: Callable[..., CRM], section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        make_crm(config={"vocabularies": section})  # CRM.open validates the table
    assert message in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 2


def test_the_table_itself_must_be_a_table(make_crm: Callable[..., CRM]) -> None:
    with pytest.raises(ConfigError, match=r"crm.toml \[vocabularies\] must be a table of lists"):
        vocab.of(make_crm(config={"vocabularies": ["buyer"]}))


def test_words_in_use_cannot_be_removed(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm()
    with crm.unit_of_work() as uow:
        cid = uow.customers.create(CustomerCreate(name="Acme")).id
        uow.contacts.add(cid, ContactCreate(name="Gina", role="gatekeeper"))
        uow.contacts.add(cid, ContactCreate(name="Gus", role="gatekeeper"))
        uow.contacts.add(cid, ContactCreate(name="Ina", role="initiator"))
        uow.interactions.log(cid, InteractionCreate(channel="phone", subject="hi", kind="complaint"))
    without = [r for r in ROLES if r not in ("gatekeeper", "initiator")]
    with pytest.raises(ConfigError) as e:
        vocab.of(make_crm(config={"vocabularies": {"contact_roles": without}}))
    assert str(e.value) == ("crm.toml [vocabularies] contact_roles: 'gatekeeper' (2 rows), 'initiator' (1 row) in use in "
                            "contacts.role cannot be removed; add it back (allowed now: user, influencer, decider)")
    with pytest.raises(ConfigError, match=r"'complaint' \(1 row\) in use in interactions.kind"):
        vocab.of(make_crm(config={"vocabularies": {"interaction_kinds": ["inquiry", "other"]}}))
    # removing a word nobody uses is fine, and so is reordering
    kept = vocab.of(make_crm(config={"vocabularies": {"contact_roles": ["initiator", "gatekeeper"]}}))
    assert kept.allowed("contact_roles") == ("initiator", "gatekeeper")


def test_plugins_declare_their_own(monkeypatch: pytest.MonkeyPatch, make_crm: Callable[..., CRM]) -> None:
    monkeypatch.setattr(vocab, "DECLARED", dict(vocab.DECLARED))
    name = vocab.declare_vocabulary("ticket_categories", ["billing", "delivery"], "What a ticket is about", owner="service")
    assert name == "ticket_categories"
    assert vocab.declare_vocabulary("ticket_categories", ["billing", "delivery"], "What a ticket is about",
                                    owner="service") == name  # the same again: a no-op
    with pytest.raises(ValueError, match="declared twice with different content"):
        vocab.declare_vocabulary("ticket_categories", ["billing"], "What a ticket is about", owner="service")
    with pytest.raises(ValueError, match="needs a lowercase name"):
        vocab.declare_vocabulary("Ticket Kinds", ["x"], "bad", owner="service")
    with pytest.raises(ValueError, match="'Bad Word' is not a word"):
        vocab.declare_vocabulary("ticket_kinds", ["Bad Word"], "bad", owner="service")
    crm = make_crm(config={"vocabularies": {"ticket_categories": ["billing", "delivery", "warranty"]}})
    assert vocab.of(crm).check("ticket_categories", "warranty", "category") == "warranty"


def test_the_sdk_exports_the_public_names() -> None:
    from crmcore import sdk

    assert sdk.declare_vocabulary is vocab.declare_vocabulary
    assert sdk.vocabularies_of is vocab.of
    assert sdk.Vocabularies is vocab.Vocabularies


def test_config_show_lists_the_vocabularies_and_refuses_a_bad_table(crm: CRM, cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text(f'[vocabularies]\ncontact_roles = {json.dumps([*ROLES, "buyer"])}\n', encoding="utf-8")
    res = cli("config", "show", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["key"]: r for r in json.loads(res.stdout)}
    assert rows["vocabularies.contact_roles"] == {"plugin": "core", "key": "vocabularies.contact_roles",
                                                  "value": ", ".join([*ROLES, "buyer"]), "source": "crm.toml [vocabularies]"}
    assert rows["vocabularies.interaction_kinds"]["source"] == "default"
    (tmp_path / "crm.toml").write_text('[vocabularies]\ncontact_roles = ["buyer", "buyer"]\n', encoding="utf-8")
    res = cli("config", "show")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == ["error: crm.toml [vocabularies] contact_roles: 'buyer' is listed twice"]
