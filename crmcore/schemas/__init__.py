"""Pydantic v2 schemas: XCreate validates input, XUpdate is partial, XRead is what we return."""
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

__all__ = [
    "AccountCreate", "AccountRead", "ContactCreate", "ContactRead", "ContactUpdate", "CustomerCreate",
    "CustomerPage", "CustomerQuery", "CustomerRead", "CustomerUpdate", "InteractionCreate", "InteractionRead", "TransactionCreate",
    "TransactionRead", "UserCreate", "UserRead",
]
