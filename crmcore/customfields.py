"""Custom customer attributes: definitions registered by plugins or integrators, values validated.

Integrators declare fields in ``crm.toml`` (``[custom_fields.budget] type = "decimal"``) or in
a plugin's ``crm_register_custom_fields`` hook. Values live in ``customers.attributes`` (JSON),
so adding a field needs no migration.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from crmcore.errors import ConfigError, InvalidInput
from crmcore.schemas.fields import no_control_multiline

FIELD_TYPES = ("str", "int", "decimal", "date", "bool", "choice")
MAX_TEXT = 10_000
MIN_INT, MAX_INT = -(2**63), 2**63 - 1  # what every engine's BIGINT (and JSON readers) hold exactly
MAX_DECIMAL = Decimal("1e15")
MAX_DECIMAL_PLACES = 10


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


@dataclass(frozen=True)
class FieldDefinition:
    name: str
    type: str = "str"
    required: bool = False
    choices: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"custom field name {self.name!r} must be an identifier")
        if self.type not in FIELD_TYPES:
            raise ConfigError(f"custom field {self.name!r}: unknown type {self.type!r} (one of {', '.join(FIELD_TYPES)})")
        if (self.type == "choice") != bool(self.choices):
            raise ConfigError(f"custom field {self.name!r}: choices go with type 'choice' and it needs them")

    def coerce(self, value: Any) -> Any:
        """The JSON-storable form of ``value``; raises ValueError with a reason."""
        t = self.type
        if t == "str":
            if not isinstance(value, str):
                raise ValueError("expected text")
            if len(value) > MAX_TEXT:
                raise ValueError(f"text longer than {MAX_TEXT:,} characters")
            return no_control_multiline(value)
        if t == "int":
            if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
                raise ValueError("expected a whole number")
            text = str(value).strip()
            if len(text) > 20:  # also spares int() a 5,000-digit string
                raise ValueError(f"expected a whole number between {MIN_INT:,} and {MAX_INT:,}, got {_shown(value)}")
            try:
                number = int(text) if not isinstance(value, int) else value
            except ValueError:
                raise ValueError(f"expected a whole number, got {_shown(value)!r}") from None
            if not MIN_INT <= number <= MAX_INT:
                raise ValueError(f"expected a whole number between {MIN_INT:,} and {MAX_INT:,}, got {_shown(value)}")
            return number
        if t == "decimal":
            if isinstance(value, bool) or not isinstance(value, (int, str, Decimal, float)):
                raise ValueError("expected a number")
            try:
                dec = Decimal(str(value).strip())
            except InvalidOperation:
                raise ValueError(f"expected a number, got {_shown(value)!r}") from None
            # NaN and Infinity are not numbers anyone can compare, sum or export; 1e400 is
            # nothing a business field holds and overflows every engine's numeric type
            if not dec.is_finite():
                raise ValueError(f"expected a finite number, got {_shown(value)!r}")
            exponent = dec.as_tuple().exponent  # an int: dec is finite
            if abs(dec) >= MAX_DECIMAL or (dec and isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES):
                raise ValueError(f"expected a number below 10^15 in size with at most {MAX_DECIMAL_PLACES} "
                                 f"decimal places, got {_shown(value)}")
            return str(dec) if dec else "0"
        if t == "date":
            try:
                return dt.date.fromisoformat(str(value).strip()).isoformat()
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD, got {_shown(value)!r}") from None
        if t == "bool":
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("true", "yes", "1"):
                return True
            if s in ("false", "no", "0"):
                return False
            raise ValueError(f"expected true/false, got {_shown(value)!r}")
        if str(value) not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {_shown(value)!r}")
        return str(value)


class FieldRegistry:
    def __init__(self) -> None:
        self.fields: dict[str, FieldDefinition] = {}
        self.owners: dict[str, str] = {}

    def add(self, definition: FieldDefinition, owner: str) -> None:
        if not isinstance(definition, FieldDefinition):
            raise ConfigError(f"{owner} registered {definition!r}, not a FieldDefinition")
        if definition.name in self.fields:
            raise ConfigError(
                f"custom field {definition.name!r} is defined twice ({self.owners[definition.name]} and {owner})"
            )
        self.fields[definition.name] = definition
        self.owners[definition.name] = owner

    def add_from_config(self, config: Mapping[str, Any]) -> None:
        for name, spec in (config.get("custom_fields") or {}).items():
            if not isinstance(spec, dict):
                raise ConfigError(f"crm.toml: [custom_fields.{name}] must be a table")
            unknown = set(spec) - {"type", "required", "choices", "description"}
            if unknown:
                raise ConfigError(f"crm.toml: [custom_fields.{name}] has unknown keys {sorted(unknown)}")
            self.add(FieldDefinition(name=name, type=spec.get("type", "str"), required=bool(spec.get("required", False)),
                                     choices=tuple(spec.get("choices", ())), description=spec.get("description", "")),
                     owner="crm.toml")

    def validate(self, values: Mapping[str, Any], *, existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Merged, coerced attributes; ``None`` removes a key. Raises InvalidInput listing each problem."""
        merged = dict(existing or {})
        errors: list[tuple[str, str]] = []
        for key, value in values.items():
            d = self.fields.get(key)
            if d is None:
                known = ", ".join(sorted(self.fields)) or "none are defined"
                errors.append((f"attributes.{key}", f"unknown custom field (known: {known})"))
                continue
            if value is None or value == "":
                merged.pop(key, None)
                continue
            try:
                merged[key] = d.coerce(value)
            except ValueError as e:
                errors.append((f"attributes.{key}", str(e)))
        for d in self.fields.values():
            if d.required and d.name not in merged:
                errors.append((f"attributes.{d.name}", "required custom field is missing"))
        if errors:
            raise InvalidInput("; ".join(f"{f}: {r}" for f, r in errors), errors)
        return merged
