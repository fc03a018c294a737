"""Engines and URL resolution.

The URL comes from ``--database``, then ``CRM_DATABASE_URL``, then ``crm.toml`` in the working
directory, and defaults to a SQLite file ``crm.db``. SQLite gets WAL and foreign keys on every
connection, because SQLite leaves foreign keys off unless each connection asks, and
``synchronous=FULL`` (a committed entry survives a power cut) unless relaxed on purpose.
"""
from __future__ import annotations

import os
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from crmcore.errors import ConfigError

DEFAULT_URL = "sqlite:///crm.db"
CONFIG_FILE = "crm.toml"

# SQLAlchemy warns that SQLite stores NUMERIC as REAL; an amount has at most 15 significant
# digits (exact in a double) and balances are integers there (crmcore.db.types).
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


_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^?#]*)@")
_QUERY_SECRET = re.compile(r"((?:password|passwd|pwd|sslpassword|passfile)=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with everything before the last ``@`` of its authority hidden (user and password),
    without parsing it: a password with an unencoded ``@`` or ``/`` must not leak either.

    A malformed URL (``postgresql//u:pw@h/db``, no ``://``) has no known scheme end: everything
    before its last ``@`` is hidden; a URL with no ``@`` keeps only its scheme when its
    authority holds a ``:`` (``postgresql://u:pw``: SQLAlchemy reads ``pw`` as a port).
    Passwords given as query parameters (``?password=``) are hidden too.
    """
    url = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}***", str(url))
    head, sep, tail = url.partition("?")
    masked, n = _CREDENTIALS.subn(lambda m: f"{m.group(1)}***@", head, count=1)
    if n == 0 and "@" in head:
        masked = "***@" + head.rpartition("@")[2]
    elif n == 0:
        scheme, has_scheme, rest = head.partition("://")
        if has_scheme and ":" in rest.partition("/")[0]:
            masked = f"{scheme}://***" + ("/" + rest.partition("/")[2] if "/" in rest else "")
        elif not has_scheme and ":" in head:
            masked = head.split(":", 1)[0].split("/", 1)[0] + ":***"
    return masked + sep + tail


def parse_url(url: str) -> URL:
    """The parsed URL, or a one-line ConfigError that never shows the credentials."""
    try:
        u = make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        raise ConfigError(f"not a database URL: {mask_url(url)!r} "
                          "(use sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST/DB)") from None
    if u.get_backend_name() != "sqlite" and ("@" in (u.host or "") or "@" in (u.database or "")):
        raise ConfigError(f"not a database URL: {mask_url(url)!r}: an '@' or '/' in the user name or password "
                          "must be percent-encoded (%40, %2F)")
    return u


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other engines."""
    u = parse_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


SYNCHRONOUS_ENV = "CRM_SQLITE_SYNCHRONOUS"
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


def sqlite_synchronous(setting: str | None = None) -> str:
    """SQLite's ``synchronous`` level: FULL unless relaxed by the argument (``crm.toml``'s
    ``[database] sqlite_synchronous``) or ``CRM_SQLITE_SYNCHRONOUS``. FULL makes a committed
    entry survive a power cut; NORMAL (in WAL mode) may lose the last commits, never corrupt."""
    value = setting or os.environ.get(SYNCHRONOUS_ENV) or "FULL"
    if not isinstance(value, str) or value.strip().upper() not in SYNCHRONOUS_LEVELS:
        raise ConfigError(f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, got {str(value)[:40]!r}")
    return value.strip().upper()


def _sqlite_on_connect(synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (pysqlite would start transactions late, after the
        # SELECTs of a check-then-insert, letting two processes both pass the check).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA busy_timeout=10000")  # first: switching to WAL may wait for a lock too
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        # SQLite's default page cache is 2 MB; bulk inserts into indexed tables and whole-table
        # analytics thrash it. 64 MB per connection (allocated on demand) keeps index pages hot.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    return on_connect


READ_ONLY = "crm_read_only"  # execution option set by read-only units of work
#: ``Connection.info`` key: the DBAPI ``total_changes`` when this connection's current SQLite
#: transaction took the write lock (absent for a deferred, read-only transaction)
SQLITE_WRITE_LOCK_AT = "crm_sqlite_write_lock_at"


def _sqlite_begin_immediate(conn: Any) -> None:
    """Take SQLite's write lock at the start of every writing transaction: one writer at a time,
    and the reads of a check-then-insert see the state the write is checked against. Read-only
    units of work begin deferred, so reports never wait for (or block) a writer."""
    read_only_txn = bool(conn.get_execution_options().get(READ_ONLY))
    conn.info.pop(SQLITE_WRITE_LOCK_AT, None)  # first: a BEGIN that fails leaves no stale mark
    conn.exec_driver_sql("BEGIN" if read_only_txn else "BEGIN IMMEDIATE")
    if not read_only_txn:
        conn.info[SQLITE_WRITE_LOCK_AT] = conn.connection.dbapi_connection.total_changes


def sqlite_snapshot_is_committed_state(conn: Connection) -> bool:
    """True when this SQLite connection holds the write lock and has written nothing yet.

    Then no one else can commit and this transaction reads exactly the committed database, so
    other read-only connections to the file read the same state (used to split a long read
    across cores). ``total_changes`` counts every row this connection inserted, updated or
    deleted, triggers included (not DDL: no unit of work changes the schema mid-way).
    """
    mark = conn.info.get(SQLITE_WRITE_LOCK_AT)
    dbapi = conn.connection.dbapi_connection  # None only once the connection is invalidated
    return mark is not None and dbapi is not None and mark == dbapi.total_changes


def read_only(conn: Connection) -> Connection:
    """Mark a fresh connection read-only before its first statement: on SQLite it then begins
    a deferred transaction and never waits for (or blocks) a writer."""
    return conn.execution_options(**{READ_ONLY: True})


def create_crm_engine(url: str, *, sqlite_synchronous_level: str | None = None, **kwargs: Any) -> Engine:
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
        event.listen(engine, "connect", _sqlite_on_connect(sqlite_synchronous(sqlite_synchronous_level)))
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine
