"""The declarative Base every table (core and plugins) is mapped on.

One MetaData with a naming convention, so constraint names are stable across SQLite and
PostgreSQL and alembic can drop them by name in downgrades.
"""
from __future__ import annotations

from typing import ClassVar

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata
    # every model maps one Table (never a join or a select), so its columns carry defaults and types
    __table__: ClassVar[Table]
