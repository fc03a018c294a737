"""Database plumbing shared by the core and every plugin: Base, column types, engines."""
from crmcore.db.base import Base, metadata
from crmcore.db.engine import create_crm_engine, resolve_database_url
from crmcore.db.types import Money, UTCDateTime, utcnow

__all__ = ["Base", "metadata", "Money", "UTCDateTime", "utcnow", "create_crm_engine", "resolve_database_url"]
