"""Configurable vocabularies: the words a CRM accepts for contact roles, interaction kinds, lead
sources, lost reasons and the like, set per installation in crm.toml.

An integrator's industry has its own words ("buyer" in a buying centre, "badge_scan" as a lead
source); hard-coded enums made each one a code change. A vocabulary is declared once, by the core
or by a plugin (:func:`declare_vocabulary`), with the defaults the code had before; crm.toml may
replace the list::

    [vocabularies]
    contact_roles = ["initiator", "user", "influencer", "decider", "gatekeeper", "buyer"]

The table is validated when the CRM opens (:func:`of`): unknown vocabularies, malformed words and
repeated words are one ``ConfigError`` line, and so is removing a word that stored rows still use
(per configured vocabulary: a loose index scan of its column, or one grouped query when the column
has no index; nothing for a vocabulary left at its defaults). Every refusal names the allowed
words and where they are configured.
"""
from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnClause, Connection, column, func, inspect, select, table, text

from crmcore.errors import ConfigError, InvalidInput

SECTION = "vocabularies"
WORD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
WORD_RULE = "lowercase letters, digits and _, starting with a letter, at most 32 characters"


@dataclass(frozen=True)
class Vocabulary:
    """One vocabulary: its defaults, who declared it and the column holding the words in use."""

    name: str
    defaults: tuple[str, ...]
    description: str
    owner: str = "core"
    column: tuple[str, str] | None = None  # (table, column) checked before a word may be removed


#: vocabularies declared by the core and the imported plugins (process-wide, like roles)
DECLARED: dict[str, Vocabulary] = {}


def declare_vocabulary(name: str, defaults: Iterable[str], description: str, *, owner: str,
                       column: tuple[str, str] | None = None) -> str:
    """Declare a vocabulary crm.toml may configure; returns ``name``.

    ``defaults`` are the words accepted without configuration (the values the code had before);
    ``column`` (table, column) is where the words are stored, so one still in use cannot be
    removed. Declaring the same vocabulary again with the same content is a no-op.
    """
    words = tuple(defaults)
    if not WORD.match(name or "") or not words:
        raise ValueError(f"vocabulary {name!r} needs a lowercase name ({WORD_RULE}) and at least one default word")
    problem = _problem(words)
    if problem:
        raise ValueError(f"vocabulary {name!r}: {problem}")
    decl = Vocabulary(name, words, description, owner, column)
    if DECLARED.setdefault(name, decl) != decl:
        raise ValueError(f"vocabulary {name!r} is declared twice with different content")
    return name


def _problem(words: Iterable[Any]) -> str | None:
    seen: set[str] = set()
    for w in words:
        if not isinstance(w, str) or not WORD.match(w):
            return f"{w!r} is not a word ({WORD_RULE})"
        if w in seen:
            return f"{w!r} is listed twice"
        seen.add(w)
    return None


def where(name: str) -> str:
    """Where a vocabulary is configured, as every message says it."""
    return f"crm.toml [{SECTION}] {name}"


class Vocabularies:
    """The words in force for one CRM: the declared defaults, replaced by crm.toml where set."""

    def __init__(self, values: Mapping[str, tuple[str, ...]], configured: Iterable[str]) -> None:
        self.values = dict(values)
        self.configured = frozenset(configured)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], declared: Mapping[str, Vocabulary] | None = None) -> Vocabularies:
        """Validate the ``[vocabularies]`` table (its shape only; :meth:`check_in_use` needs the database)."""
        declared = DECLARED if declared is None else declared
        section = config.get(SECTION) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"crm.toml [{SECTION}] must be a table of lists, e.g. contact_roles = [\"buyer\", ...]")
        unknown = sorted(set(section) - set(declared))
        if unknown:
            raise ConfigError(f"crm.toml [{SECTION}]: unknown vocabulary {unknown[0]!r} "
                              f"(known: {', '.join(sorted(declared))})")
        values = {name: v.defaults for name, v in declared.items()}
        for name, words in section.items():
            if not isinstance(words, list) or not words:
                raise ConfigError(f"{where(name)} must be a non-empty list of words, e.g. {list(declared[name].defaults[:2])}")
            problem = _problem(words)
            if problem:
                raise ConfigError(f"{where(name)}: {problem}")
            values[name] = tuple(words)
        return cls(values, section)

    def allowed(self, name: str) -> tuple[str, ...]:
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"no vocabulary {name!r} is declared (known: {', '.join(sorted(self.values))})") from None

    def check(self, name: str, value: str | None, field: str) -> str | None:
        """``value`` normalised (stripped, lower case) if the vocabulary allows it, else one
        ``InvalidInput`` line naming the allowed words and where they are configured."""
        if value is None:
            return None
        word = str(value).strip().lower()
        allowed = self.allowed(name)
        if word not in allowed:
            reason = f"{str(value).strip()!r} is not allowed (allowed: {', '.join(allowed)}; configured in {where(name)})"
            raise InvalidInput(f"invalid input: {field}: {reason}", [(field, reason)])
        return word

    def check_in_use(self, conn: Connection, declared: Mapping[str, Vocabulary] | None = None) -> None:
        """Refuse a configuration that removes a word stored rows still use (per configured
        vocabulary with a column; a table not created yet has nothing in use)."""
        declared = DECLARED if declared is None else declared
        names = inspect(conn).get_table_names()
        for name in sorted(self.configured):
            vocab = declared.get(name)
            if vocab is None or vocab.column is None or vocab.column[0] not in names:
                continue
            tbl, col = vocab.column
            rows = _outside(conn, tbl, col, self.values[name])
            if rows:
                used = ", ".join(f"{w!r} ({n} row{'s' if n != 1 else ''})" for w, n in rows)
                raise ConfigError(f"{where(name)}: {used} in use in {tbl}.{col} cannot be removed; "
                                  f"add it back (allowed now: {', '.join(self.values[name])})")


def _outside(conn: Connection, tbl: str, col: str, allowed: tuple[str, ...]) -> list[tuple[str, int]]:
    """(word, rows) of the stored words not in ``allowed``. An indexed column is read word by word
    (a loose index scan: one index probe per distinct word, milliseconds on a million rows);
    otherwise one grouped scan."""
    c: ColumnClause[Any] = column(col)
    t = table(tbl, c)
    indexed = any(ix["column_names"][:1] == [col] for ix in inspect(conn).get_indexes(tbl))
    if indexed:
        step = text(f"WITH RECURSIVE w(v) AS (SELECT min({col}) FROM {tbl} UNION ALL "
                    f"SELECT (SELECT min({col}) FROM {tbl} WHERE {col} > w.v) FROM w WHERE w.v IS NOT NULL) "
                    "SELECT v FROM w WHERE v IS NOT NULL")
        extra = sorted(w for w in conn.execute(step).scalars() if w not in allowed)
        if not extra:
            return []
        q = select(c, func.count()).select_from(t).where(c.in_(extra)).group_by(c).order_by(c)
    else:
        q = select(c, func.count()).select_from(t).where(c.is_not(None), c.not_in(allowed)).group_by(c).order_by(c)
    return [(w, n) for w, n in conn.execute(q).all()]


_BY_CRM: weakref.WeakKeyDictionary[Any, Vocabularies] = weakref.WeakKeyDictionary()


def of(crm: Any) -> Vocabularies:
    """The vocabularies of an open CRM, validated once (shape, then words in use when the
    database is initialised) and kept for the CRM's lifetime."""
    found = _BY_CRM.get(crm)
    if found is not None:
        return found
    vocab = Vocabularies.from_config(crm.config or {})
    if vocab.configured:
        from crmcore.db.engine import read_only

        with read_only(crm.engine.connect()) as conn:  # a read: never the SQLite write lock
            vocab.check_in_use(conn)
    _BY_CRM[crm] = vocab
    return vocab


def config_rows(crm: Any) -> list[dict[str, Any]]:
    """The vocabularies in force, as ``crm config show`` rows (validating them, like any use)."""
    vocab = of(crm)
    return [{"plugin": DECLARED[name].owner if name in DECLARED else "core", "key": f"{SECTION}.{name}",
             "value": ", ".join(words), "source": f"crm.toml [{SECTION}]" if name in vocab.configured else "default"}
            for name, words in sorted(vocab.values.items())]


def _declare_core() -> None:
    from crmcore.enums import ContactRole, InteractionKind

    declare_vocabulary("contact_roles", [r.value for r in ContactRole], "Roles of a contact in the buying centre",
                       owner="core", column=("contacts", "role"))
    declare_vocabulary("interaction_kinds", [k.value for k in InteractionKind], "What an interaction was about",
                       owner="core", column=("interactions", "kind"))


_declare_core()

__all__ = ["DECLARED", "SECTION", "Vocabularies", "Vocabulary", "config_rows", "declare_vocabulary", "of", "where"]
