"""The fastest insert each engine offers, with SQLAlchemy's own type processing.

SQLAlchemy Core's executemany spends ~20 µs a row building parameter dicts, which alone
would cap an import near 50k rows/s. Here the column types' bind processors (the same
functions SQLAlchemy would apply: Money quantising, UTC datetimes, enums, JSON) are looked up
once per batch and applied column by column, then the rows go to the driver in one call:
``executemany`` on SQLite, ``COPY … FROM STDIN`` on PostgreSQL (psycopg 3).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault


def _processors(table: Table, columns: Sequence[str], conn: Connection) -> list[Any]:
    dialect = conn.dialect
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def _missing_value(table: Table, name: str) -> Any:
    """What a row that leaves column ``name`` out stores: its Python-side default (as
    SQLAlchemy's own insert would), else NULL; a server-side default cannot be asked for row
    by row in one statement, so leaving such a column out of only some rows is a bug."""
    col = table.c[name]
    default = col.default
    if isinstance(default, ScalarElementColumnDefault):
        return default.arg
    if isinstance(default, CallableColumnDefault):
        return default.arg(None)  # type: ignore[arg-type]  # SQLAlchemy wraps it to take a context; ours ignore it
    if default is None and col.server_default is not None:
        raise TypeError(f"bulk_insert into {table.name}: column {name!r} has a server default; "
                        "give it in every row or in none")
    return None


def _rows(table: Table, rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The column list and the row values. Rows may give different keys (an update's audit
    row has ``before``, an insert's does not): a key a row leaves out takes the column's
    Python-side default or NULL. Columns no row gives take their Python-side default too."""
    first = rows[0]
    keys = first.keys()
    if all(r.keys() == keys for r in rows):
        columns = list(first)
        data = [[r[c] for c in columns] for r in rows]
    else:
        columns = list(dict.fromkeys(c for r in rows for c in r))
        fill = {c: _missing_value(table, c) for c in columns if not all(c in r for r in rows)}
        data = [[r[c] if c in r else fill[c] for c in columns] for r in rows]
    for col in table.columns:
        if col.name not in columns and col.default is not None and not col.primary_key:
            value = _missing_value(table, col.name)
            columns.append(col.name)
            for row in data:
                row.append(value)
    return columns, data


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` inside the caller's transaction (see :func:`_rows` for
    rows that give different columns)."""
    if not rows:
        return
    columns, data = _rows(table, rows)
    procs = _processors(table, columns, conn)
    for j, proc in enumerate(procs):
        if proc is not None:
            last_in: Any = None
            last_out: Any = None
            for row in data:
                v = row[j]
                if v is None:
                    continue
                if v is not last_in:  # columns often repeat one object (a timestamp, a currency)
                    last_in, last_out = v, proc(v)
                row[j] = last_out
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    name = conn.dialect.identifier_preparer.format_table(table)
    if conn.dialect.name == "postgresql":
        import psycopg

        sql = f"COPY {name} ({quoted}) FROM STDIN"
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(sql) as copy:
                for row in data:
                    copy.write_row(row)
        except psycopg.Error as e:  # the same exception types SQLAlchemy raises everywhere else
            raise DBAPIError.instance(sql, None, e, psycopg.Error) from None
        finally:
            cursor.close()
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", [tuple(r) for r in data])


def placeholders(conn: Connection, n: int, width: int = 1) -> str:
    """``?, ?`` (SQLite) or ``%s, %s`` (psycopg); with width > 1, ``(?, ?), (?, ?)`` row values."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    one = mark if width == 1 else "(" + ", ".join([mark] * width) + ")"
    return ", ".join([one] * n)


def select_in(conn: Connection, sql: str, values: Sequence[Any], width: int = 1, chunk: int = 2000) -> list[Any]:
    """Run ``sql`` (ending in ``IN ({})``) for ``values`` in chunks, with driver placeholders.

    Large IN lists cost SQLAlchemy several ms to compile per statement; the driver-level
    statement avoids that (the values are still bound parameters, never interpolated).
    """
    out: list[Any] = []
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        params = tuple(x for v in part for x in v) if width > 1 else tuple(part)
        stmt = sql.format(placeholders(conn, len(part), width))
        if width > 1 and conn.dialect.name == "sqlite":
            stmt = stmt.replace(f"IN ({placeholders(conn, len(part), width)})",
                                f"IN (VALUES {placeholders(conn, len(part), width)})")
        out.extend(conn.exec_driver_sql(stmt, params).all())
    return out
