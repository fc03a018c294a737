"""Engines and URL resolution.

The URL comes from ``--database``, then ``CRM_DATABASE_URL``, then ``crm.toml`` in the working
directory, and defaults to a SQLite file ``crm.db``. SQLite gets WAL and foreign keys on every
connection, because SQLite leaves foreign keys off unless each connection asks.
"""
from __future__ import annotations

import os
import tomllib
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc as sa_exc
from sqlalchemy.engine import URL, make_url

from crmcore.errors import ConfigError

DEFAULT_URL = "sqlite:///crm.db"
CONFIG_FILE = "crm.toml"

# SQLAlchemy warns that SQLite stores NUMERIC as REAL; Money quantises every value to cents on
# the way in and out, which is exact for amounts below 10^13.
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*", category=sa_exc.SAWarning)


def read_config(cwd: Path | None = None) -> dict[str, Any]:
    """The parsed ``crm.toml`` of the working directory, or ``{}`` when there is none."""
    path = (cwd or Path.cwd()) / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None


def resolve_database_url(explicit: str | None = None, cwd: Path | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("CRM_DATABASE_URL")
    if env:
        return env
    config = read_config(cwd)
    url = config.get("database", {}).get("url") if isinstance(config.get("database"), dict) else None
    url = url or config.get("database_url")
    if url:
        if not isinstance(url, str):
            raise ConfigError(f"{CONFIG_FILE}: database url must be a string")
        return url
    return DEFAULT_URL


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except sa_exc.ArgumentError:
        raise ConfigError(f"not a database URL: {url!r} (use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB)") from None


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other engines."""
    u = parse_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (pysqlite would start transactions late, after the
    # SELECTs of a check-then-insert, letting two processes both pass the check).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    # SQLite's default page cache is 2 MB; bulk inserts into indexed tables and whole-table
    # analytics thrash it. 64 MB per connection (allocated on demand) keeps index pages hot.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


READ_ONLY = "crm_read_only"  # execution option set by read-only units of work


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take SQLite's write lock at the start of every writing transaction: one writer at a time,
    and the reads of a check-then-insert see the state the write is checked against. Read-only
    units of work begin deferred, so reports never wait for (or block) a writer."""
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def create_crm_engine(url: str, **kwargs: Any) -> Engine:
    u = parse_url(url)
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql+psycopg://…")
    if backend == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(u, **kwargs)
    except (ImportError, sa_exc.NoSuchModuleError) as e:
        raise ConfigError(f"cannot use {u.drivername}: {e}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine
