"""Form fields to the services' pydantic schemas, with the errors next to their fields.

The schemas are the CLI's and the API's (one source of validation); this module only maps an
HTML form onto them: empty fields are "not given", tags are comma-separated, and a
``ValidationError`` becomes {field: message} for the template, the input kept as typed.
"""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crmcore.errors import InvalidInput, validation_errors

M = TypeVar("M", bound=BaseModel)


def values(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The named fields as typed (stripped), for re-displaying the form."""
    out: dict[str, str] = {}
    for n in names:
        v = form.get(n) if form is not None else None
        out[n] = v.strip() if isinstance(v, str) else ""
    return out


def bind(model: type[M], raw: dict[str, str], *, keep_empty: tuple[str, ...] = (),
         extra: dict[str, Any] | None = None) -> tuple[M | None, dict[str, str]]:
    """Validate ``raw`` with ``model``; returns (data, {}) or (None, {field: message}).

    Empty fields are left out, except those in ``keep_empty`` (sent as None: "clear this field").
    """
    data: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "tags":
            data[k] = [t.strip() for t in v.split(",") if t.strip()]
        elif v != "":
            data[k] = v
        elif k in keep_empty:
            data[k] = None
    data.update(extra or {})
    try:
        return model.model_validate(data), {}
    except ValidationError as e:
        return None, field_errors(validation_errors(e))


def field_errors(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, message in pairs:
        key = name.split(".")[0]
        out.setdefault(key, message)
    return out


def service_errors(e: InvalidInput) -> dict[str, str]:
    """An InvalidInput from a service: its (field, reason) pairs, or the message under ``_``."""
    return field_errors(e.errors) if e.errors else {"_": str(e)}
