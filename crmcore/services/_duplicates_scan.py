"""The set-based duplicate scan over many customers (core-internal; the rules are in ``duplicates``).

Column-wise, so the cost per customer is a few C-level string operations and NumPy on integer
codes, never a Python object per row or per pair:

- the keys of all names at once (:func:`name_keys`): one regex pass over the names joined by
  newlines, words sorted per name; the same result as ``duplicates.name_key`` one by one;
- e-mails and phone digits likewise; each key becomes an integer code, its hash (equal keys,
  equal codes; a pair found on a code is checked on the values), so blocks are runs of sorted
  integers; the name keys are sorted once (and once reversed) for the neighbours;
- candidate pairs are the members of each block (same name key, e-mail or phone; a block of more
  than ``MAX_BLOCK`` members is a stop word, e.g. a shared switchboard number, and is skipped and
  reported) and the neighbours in the sorted (and sorted reversed) name keys;
- pairs that cannot reach the threshold even with the best name similarity their key lengths
  allow are dropped before any string is compared; rapidfuzz compares the rest on all cores.
"""
from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

MAX_BLOCK = 200  # a block larger than this (a shared switchboard number) is a stop word: skipped, reported
WINDOW = 3  # neighbours compared in each sorted order
_NON_WORD = re.compile(r"[^\w]+")
_NON_WORD_LINES = re.compile(r"(?:[^\w\n]|_)+")  # as _NON_WORD after "_" -> " ", keeping the line breaks
_NON_DIGIT_LINES = re.compile(r"[^0-9\n]+")


@dataclass
class Skipped:
    """A block too large to pair up: what its members share and how many they are."""

    kind: str  # "name", "e-mail" or "phone"
    value: str
    size: int

    def __str__(self) -> str:
        return f"{self.size} customers share the {self.kind} {self.value!r}: not paired on it (a stop word)"


@dataclass
class Columns:
    """The scan's view of the customers: one entry per customer, keys normalised ("" for none)."""

    ids: np.ndarray
    keys: list[str]
    emails: list[str]
    phones: list[str]
    countries: list[str]
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def key_of_folded(folded: str, legal_forms: frozenset[str]) -> str:
    """``duplicates.name_key`` after the folding: unaccented, no legal form, words sorted."""
    plain = folded if folded.isascii() else strip_accents(folded)
    return " ".join(sorted(w for w in _NON_WORD.split(plain.replace("_", " ")) if w and w not in legal_forms))


def _joined(values: list[str]) -> str | None:
    """The values joined by newlines, or None when a value holds a newline itself."""
    text = "\n".join(values)
    return text if text.count("\n") == len(values) - 1 else None


def name_keys(folded: list[str], legal_forms: frozenset[str]) -> list[str]:
    """:func:`key_of_folded` of every folded name, in one regex pass over all of them."""
    text = _joined(folded) if folded else None
    if text is None:
        return [key_of_folded(f, legal_forms) for f in folded]
    if not text.isascii():  # decompose only the names that need it
        folded = list(folded)
        for k in compress(range(len(folded)), map(operator.not_, map(str.isascii, folded))):
            folded[k] = strip_accents(folded[k])
        text = "\n".join(folded)
    lines = _NON_WORD_LINES.sub(" ", text).split("\n")
    return [" ".join(sorted(w for w in line.split() if w not in legal_forms)) for line in lines]


def email_keys(emails: Sequence[str | None]) -> list[str]:
    return [e.strip().casefold() if e else "" for e in emails]


def phone_keys(phones: Sequence[str | None], one: Callable[[str | None], str | None]) -> list[str]:
    """The last nine digits of each phone ("" for none); ``one`` is the rule for a single phone."""
    values = [p or "" for p in phones]
    text = _joined(values) if values else None
    if text is None or not text.isascii():
        return [one(p) or "" for p in values]
    return [d[-9:] if len(d) >= 6 else "" for d in _NON_DIGIT_LINES.sub("", text).split("\n")]


def codes(values: list[str]) -> np.ndarray:
    """Each value's integer code ("" is 0; equal values, equal codes), for columns of few distinct values."""
    distinct = dict.fromkeys(values)
    distinct.pop("", None)
    index = dict(zip(["", *distinct], range(len(distinct) + 1), strict=True))
    return np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))


def hash_codes(values: list[str]) -> np.ndarray:
    """Each value's hash as its code ("" is 0): equal values, equal codes, at the cost of hashing
    (no dictionary of a million keys). Two values may share a code, very rarely: pairs found on a
    code are checked against the values themselves (:func:`same_value`)."""
    code = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
    present = np.fromiter(map(bool, values), dtype=bool, count=len(values))
    code[present & (code == 0)] = 1
    code[~present] = 0
    return code


def same_value(values: list[str], code: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """For each pair (i, j): both have a value and it is the same (codes first, the values where they agree)."""
    same = (code[i] == code[j]) & (code[i] != 0)
    at = np.flatnonzero(same)
    same[at] = np.fromiter(map(operator.eq, map(values.__getitem__, i[at].tolist()), map(values.__getitem__, j[at].tolist())),
                           dtype=bool, count=len(at))
    return same


def sorted_order(values: list[str]) -> np.ndarray:
    """The indexes of the values in sorted order (equal values in their order)."""
    return np.fromiter(sorted(range(len(values)), key=values.__getitem__), dtype=np.int64, count=len(values))


def block_pairs(code: np.ndarray, kind: str, values: list[str], skipped: list[Skipped]) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs within runs of equal codes (0: none); runs over MAX_BLOCK are added to ``skipped``."""
    order = np.argsort(code, kind="stable")
    ordered = code[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    keyed = ordered[starts] != 0  # 0: no key
    for start, size in zip(starts[keyed & (sizes > MAX_BLOCK)].tolist(), sizes[keyed & (sizes > MAX_BLOCK)].tolist(),
                           strict=True):
        skipped.append(Skipped(kind, values[order[start]], size))
    left: list[np.ndarray] = [np.empty(0, np.int64)]
    right: list[np.ndarray] = [np.empty(0, np.int64)]
    paired = keyed & (sizes > 1) & (sizes <= MAX_BLOCK)
    for size in np.unique(sizes[paired]).tolist():  # all blocks of one size at once: a matrix of members
        members = order[starts[paired & (sizes == size)][:, None] + np.arange(size)]
        x, y = np.triu_indices(size, k=1)
        left.append(members[:, x].ravel())
        right.append(members[:, y].ravel())
    return np.concatenate(left), np.concatenate(right)


def candidate_pairs(cols: Columns) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Index pairs (i < j, unique) sharing a block or neighbours in a sorted order of name keys,
    and the integer codes of each key column."""
    n = len(cols)
    code = {"key": hash_codes(cols.keys), "email": hash_codes(cols.emails), "phone": hash_codes(cols.phones)}
    left, right = [], []
    for column, kind, values in ((code["key"], "name", cols.keys), (code["email"], "e-mail", cols.emails),
                                 (code["phone"], "phone", cols.phones)):
        i, j = block_pairs(column, kind, values, cols.skipped)
        left.append(i)
        right.append(j)
    for order in (sorted_order(cols.keys), sorted_order([k[::-1] for k in cols.keys])):
        for w in range(1, WINDOW + 1):
            left.append(order[:-w])
            right.append(order[w:])
    i, j = np.concatenate(left).astype(np.int64), np.concatenate(right).astype(np.int64)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    differ = lo != hi
    pair = lo[differ] * max(n, 1) + hi[differ]
    pair.sort()
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    return pair // max(n, 1), pair % max(n, 1), code


def _combined(same_email: np.ndarray, same_phone: np.ndarray, similarity: np.ndarray, damp: np.ndarray,
              settings: Any) -> np.ndarray:
    """``duplicates.score_pair``'s rule over arrays of pairs."""
    name_w = np.where(similarity >= 0.75, settings.name_weight * (similarity - 0.75) / 0.25, 0.0)
    miss = (1 - damp * settings.email_weight * same_email) * (1 - damp * settings.phone_weight * same_phone) \
        * (1 - damp * name_w)
    return 1 - miss


def scored_pairs(cols: Columns, settings: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The index pairs scoring at least ``settings.threshold`` and their scores (vectorised)."""
    i, j, code = candidate_pairs(cols)
    countries = codes(cols.countries)
    same_email = same_value(cols.emails, code["email"], i, j)
    same_phone = same_value(cols.phones, code["phone"], i, j)
    damp = np.where((countries[i] != 0) & (countries[j] != 0) & (countries[i] != countries[j]), 0.5, 1.0)
    has_key = (code["key"][i] != 0) & (code["key"][j] != 0)
    # the best similarity the key lengths allow (an Indel distance is at least the length difference)
    lengths = np.fromiter(map(len, cols.keys), dtype=np.int64, count=len(cols))
    la, lb = lengths[i], lengths[j]
    best = np.where(has_key, 1 - np.abs(la - lb) / np.maximum(la + lb, 1), 0.0)
    floor = settings.threshold - 1e-12
    reachable = np.flatnonzero(_combined(same_email, same_phone, best, damp, settings) >= floor)
    i, j, same_email, same_phone, damp, has_key = (a[reachable] for a in (i, j, same_email, same_phone, damp, has_key))
    keys = np.array(cols.keys, dtype=object)
    similarity = process.cpdist(keys[i], keys[j], scorer=fuzz.ratio, workers=-1) / 100 if len(i) else np.empty(0)
    similarity[~has_key] = 0
    score = _combined(same_email, same_phone, similarity, damp, settings)
    keep = np.flatnonzero(score >= floor)
    return i[keep], j[keep], score[keep]
