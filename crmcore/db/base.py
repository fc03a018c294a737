"""The declarative Base every table (core and plugins) is mapped on.

One MetaData with a naming convention, so constraint names are stable across SQLite and
PostgreSQL and alembic can drop them by name in downgrades.

A plugin's models may be registered on first need instead of when its hook module is imported
(:func:`defer_models`): ``crm customer list`` then maps no plugin table. Whatever reads the
whole schema (``create_all``, ``drop_all``, ``sorted_tables``, the migrations) imports them first.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, ClassVar

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_deferred: list[str] = []  # models modules named by defer_models, not imported yet


def defer_models(module: str) -> None:
    """Register the models module ``module`` (``"crm_x.models"``) to be imported when the whole
    schema is first needed (see :func:`import_deferred_models`), not now.

    For a plugin's hook module: its tables are on the metadata for every reader of the whole
    schema (creating tables, the migrations, ``crm db check``), while a command that does not
    use them (``crm customer list``) neither imports nor maps them. The plugin's own code imports
    its models where it uses them, as usual.
    """
    if module not in sys.modules and module not in _deferred:
        _deferred.append(module)


def import_deferred_models() -> None:
    """Import every models module registered by :func:`defer_models` (each once)."""
    while _deferred:
        module = _deferred.pop(0)
        try:
            importlib.import_module(module)
        except BaseException:
            _deferred.insert(0, module)  # the next reader meets the same error, not a silently missing table
            raise


class CRMMetaData(MetaData):
    """The shared MetaData: reading the whole schema imports the deferred models first."""

    @property
    def sorted_tables(self) -> list[Table]:
        import_deferred_models()
        return super().sorted_tables

    def create_all(self, *args: Any, **kwargs: Any) -> None:
        import_deferred_models()
        super().create_all(*args, **kwargs)

    def drop_all(self, *args: Any, **kwargs: Any) -> None:
        import_deferred_models()
        super().drop_all(*args, **kwargs)


metadata = CRMMetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata
    # every model maps one Table (never a join or a select), so its columns carry defaults and types
    __table__: ClassVar[Table]
