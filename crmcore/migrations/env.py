"""The one alembic environment: the core's versions and every plugin's branch.

Run through :mod:`crmcore.migrations.runner`, which passes the open connection and the
version locations; it also works with the ``alembic`` command given ``-x url=...``.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import crmcore.models  # noqa: F401 - registers the core tables on the metadata
from crmcore.db.base import metadata

config = context.config


def _include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """With ``include_tables`` set (plugin authors autogenerating), compare only those tables."""
    allowed = config.attributes.get("include_tables")
    if type_ == "table" and allowed is not None:
        return name in allowed
    return True


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # plain `alembic -x url=...` use, for plugin authors generating revisions
    from crmcore.db.engine import create_crm_engine, resolve_database_url

    url = context.get_x_argument(as_dictionary=True).get("url") or resolve_database_url()
    with create_crm_engine(url).connect() as conn:
        run(conn)
