"""Languages of the console: gettext catalogues (Babel) and locale-aware formatting.

The catalogues are the ``.po`` files under ``crmcore/console/locale/<lang>/LC_MESSAGES``; they
are compiled in memory when first used (no build step, nothing to forget at install). A
message with no translation shows in English. Plugins may ship their own catalogues (see
``ConsoleCatalog`` in :mod:`crmcore.console.extensions`); they are merged over the core's.

The language of a request: the signed-in user's ``users.language``, else the ``crm_lang``
cookie (set by the switcher before signing in), else the best match of ``Accept-Language``.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
#: code -> name of the language in itself (shown in the switcher)
LANGUAGES: dict[str, str] = {"en": "English", "zh_Hans": "简体中文", "ru": "Русский"}
DEFAULT = "en"


def _compile(po_path: Path) -> Translations:
    with po_path.open("rb") as f:
        catalog = read_po(f)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


_extra: list[Path] = []  # plugins' locale directories, added when the console is built


def add_catalog_dir(path: Path) -> None:
    if path not in _extra:
        _extra.append(path)
        translations.cache_clear()


@lru_cache(maxsize=16)
def translations(lang: str) -> NullTranslations:
    """The merged catalogues of ``lang``. English needs none (the message ids are English), but a
    plugin may ship an ``en`` catalogue to name its codes (``clv_probabilistic``) in words."""
    base: NullTranslations | None = None
    for root in (LOCALE_DIR, *_extra):
        po = root / lang / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            continue
        t = _compile(po)
        if base is None:
            base = t
        else:
            # a plugin's catalogue is consulted first, then the core's
            t.add_fallback(base)
            base = t
    return base or NullTranslations()


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LANGUAGES` for an ``Accept-Language`` header (English when none fits)."""
    if not accept_language:
        return DEFAULT
    wanted: list[tuple[float, str]] = []
    for part in accept_language.split(",")[:20]:
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        if tag:
            wanted.append((weight, tag.strip().replace("-", "_").lower()))
    for _, tag in sorted(wanted, key=lambda w: -w[0]):
        if tag.startswith("zh"):
            # Traditional Chinese readers get English rather than the wrong script
            if any(x in tag for x in ("hant", "_tw", "_hk", "_mo")):
                continue
            return "zh_Hans"
        if tag.startswith("ru"):
            return "ru"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def valid_language(code: str | None) -> str | None:
    return code if code in LANGUAGES else None


_LOCALES = {"en": "en_GB", "zh_Hans": "zh_Hans_CN", "ru": "ru_RU"}


@lru_cache(maxsize=4096)
def _medium_date(lang: str, value: dt.date) -> str:
    """A date as the timeline shows it: Babel's formatting is the costly part of drawing a long
    timeline, and the same days come back on every view."""
    return dates.format_date(value, format="medium", locale=_LOCALES[lang])


_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_MONEY_TEXT = re.compile(r"(-?\d{1,3}(?:,?\d{3})*(?:\.\d+)?) ([A-Z]{3})")
_DECIMAL_TEXT = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class Formatter:
    """Dates, numbers and money for one locale, and the gettext functions of its language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self.locale = Locale.parse(_LOCALES[self.lang])
        self._t = translations(self.lang)

    def gettext(self, msgid: str, /, **values: Any) -> str:
        text = self._t.gettext(msgid)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def label(self, text: str | None, /, capital: bool = True) -> str:
        """A configured name (a pipeline's stage, a tier) in the reader's language: its translation
        when a catalogue has one, else the name as configured; the first letter capitalised (a
        column heading) unless ``capital`` is false (inside a sentence)."""
        if not text:
            return ""
        shown = self._t.gettext(text)
        return shown[:1].upper() + shown[1:] if capital else shown

    def term(self, context: str, code: str | None, /) -> str:
        """A code shown to a reader (``context``: ``role``, ``audit action``, ``audit entity``) in
        the reader's language: the catalogues' entry with that ``msgctxt`` (a plugin names its own
        roles and audit codes in its catalogue), else the code as it is stored."""
        if not code:
            return ""
        return str(self._t.pgettext(context, code))

    def date(self, value: dt.date | dt.datetime | str | None, fmt: str = "medium") -> str:
        """A date, or a datetime to the minute (in UTC): nobody reads a deadline's seconds."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
            except ValueError:
                return str(value)
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
            if fmt not in ("short", "medium", "long", "full"):  # a pattern of the caller's
                return dates.format_datetime(value, format=fmt, locale=self.locale, tzinfo=dt.UTC)
            day = dates.format_date(value.date(), format=fmt, locale=self.locale)
            time = dates.format_time(value, format="short", locale=self.locale, tzinfo=dt.UTC)
            pattern = str(dates.get_datetime_format(fmt, locale=self.locale))  # type: ignore[arg-type]
            return pattern.replace("'", "").replace("{0}", time).replace("{1}", day)
        return dates.format_date(value, format=fmt, locale=self.locale)

    def day(self, value: dt.date | dt.datetime | str | None) -> str:
        """Only the date of a datetime (the timeline's column)."""
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                return str(value)
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).date()
        return "" if value is None else _medium_date(self.lang, value)

    def value(self, value: Any) -> str:
        """A value of a plugin's generic 360° section or table, for a reader: yes/no, numbers,
        ISO dates and times, "12.50 EUR" as money, a code (``on_track``) through the catalogues
        (else in words); any other text as it is."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return self.gettext("Yes") if value else self.gettext("No")
        if isinstance(value, (int, float, Decimal)):
            return self.number(value)
        if isinstance(value, dict):  # {"email": "opt_in"}: each key and value for a reader
            return ", ".join(f"{self.label(str(k).replace('_', ' '))}: {self.value(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return ", ".join(self.value(v) for v in value)
        text = str(value)
        if ", " in text and all(_CODE.fullmatch(part) for part in text.split(", ")):  # a list of codes
            return ", ".join(self.label(part.replace("_", " "), capital=False) for part in text.split(", "))
        if _ISO_DATETIME.fullmatch(text) or _ISO_DATE.fullmatch(text):
            return self.date(text)
        if m := _MONEY_TEXT.fullmatch(text):
            return self.money(m[1].replace(",", ""), m[2])
        if m := _DECIMAL_TEXT.fullmatch(text):
            places = len(m[1] or "")
            return numbers.format_decimal(Decimal(text.replace(",", "")), format="#,##0" + ("." + "0" * places if places else ""),
                                          locale=self.locale)
        if _CODE.fullmatch(text):
            return self.label(text.replace("_", " "), capital=False)
        return text

    def number(self, value: Any) -> str:
        if value is None or value == "":
            return ""
        try:
            return numbers.format_decimal(Decimal(str(value)), locale=self.locale)
        except (InvalidOperation, ValueError):
            return str(value)

    def money(self, value: Any, currency: str | None) -> str:
        if value is None or value == "":
            return ""
        try:
            amount = Decimal(str(value))
        except (InvalidOperation, ValueError):
            return str(value)
        if not currency:
            return self.number(amount)
        return numbers.format_currency(amount, currency, locale=self.locale)
