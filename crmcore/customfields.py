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

FIELD_TYPES = ("str", "int", "decimal", "date", "bool", "choice")


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
            return value
        if t == "int":
            if isinstance(value, bool):
                raise ValueError("expected a whole number")
            try:
                return int(str(value).strip()) if not isinstance(value, int) else value
            except ValueError:
                raise ValueError(f"expected a whole number, got {value!r}") from None
        if t == "decimal":
            try:
                return str(Decimal(str(value).strip()))
            except InvalidOperation:
                raise ValueError(f"expected a number, got {value!r}") from None
        if t == "date":
            try:
                return dt.date.fromisoformat(str(value).strip()).isoformat()
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}") from None
        if t == "bool":
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("true", "yes", "1"):
                return True
            if s in ("false", "no", "0"):
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        if str(value) not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")
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
