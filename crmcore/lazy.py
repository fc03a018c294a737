"""Lazy package exports (PEP 562), for packages whose names should not cost their imports.

``crmcore`` and ``crmcore.schemas`` export many names; a command imports only the modules it
uses, so ``crm --help`` does not load SQLAlchemy and ``crm customer list`` no ledger schemas.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__``: ``exports`` maps a name to the module that
    defines it; a name is imported on first use and then kept in ``namespace`` (the package's
    globals), so the next use does not come back here."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *exports])

    return getattr_, dir_
