"""Pydantic v2 schemas: XCreate validates input, XUpdate is partial, XRead is what we return.

Names are imported on first use (PEP 562): ``crm customer list`` builds the customer schemas,
not the ledger's, the users' or the interactions' (tests/test_startup_imports.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("AccountCreate", "AccountRead", "TransactionCreate", "TransactionRead"), "crmcore.schemas.account"),
    **dict.fromkeys(("ContactCreate", "ContactRead", "ContactUpdate", "CustomerCreate", "CustomerPage", "CustomerQuery",
                     "CustomerRead", "CustomerUpdate"), "crmcore.schemas.customer"),
    **dict.fromkeys(("InteractionCreate", "InteractionRead"), "crmcore.schemas.interaction"),
    **dict.fromkeys(("UserCreate", "UserRead"), "crmcore.schemas.user"),
}

__all__ = [
    "AccountCreate", "AccountRead", "ContactCreate", "ContactRead", "ContactUpdate", "CustomerCreate",
    "CustomerPage", "CustomerQuery", "CustomerRead", "CustomerUpdate", "InteractionCreate", "InteractionRead", "TransactionCreate",
    "TransactionRead", "UserCreate", "UserRead",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from crmcore.schemas.account import AccountCreate, AccountRead, TransactionCreate, TransactionRead
    from crmcore.schemas.customer import (
        ContactCreate,
        ContactRead,
        ContactUpdate,
        CustomerCreate,
        CustomerPage,
        CustomerQuery,
        CustomerRead,
        CustomerUpdate,
    )
    from crmcore.schemas.interaction import InteractionCreate, InteractionRead
    from crmcore.schemas.user import UserCreate, UserRead
