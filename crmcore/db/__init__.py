"""Database plumbing shared by the core and every plugin: Base, column types, engines, date arithmetic."""
from typing import TYPE_CHECKING

from crmcore.db.base import Base, defer_models, import_deferred_models, metadata
from crmcore.db.dates import date_of, day_number, day_of, day_sql, days_between
from crmcore.db.engine import create_crm_engine, resolve_database_url
from crmcore.db.types import Money, UTCDateTime, utcnow

if TYPE_CHECKING:  # typed for mypy; at run time loaded lazily by __getattr__ below
    from crmcore.models._columns import enum_column

__all__ = [
    "Base",
    "Money",
    "UTCDateTime",
    "create_crm_engine",
    "date_of",
    "day_number",
    "day_of",
    "day_sql",
    "days_between",
    "defer_models",
    "enum_column",
    "import_deferred_models",
    "metadata",
    "resolve_database_url",
    "utcnow",
]


def __getattr__(name: str) -> object:
    """``enum_column`` (a VARCHAR + CHECK enum, the same on every engine) lives with the models'
    column helpers; loaded on first use so importing ``crmcore.db`` does not import the models."""
    if name == "enum_column":
        from crmcore.models._columns import enum_column

        return enum_column
    raise AttributeError(f"module 'crmcore.db' has no attribute {name!r}")
