"""pytest fixtures for crmcore and for plugin authors (loaded through the ``pytest11`` entry point).

Set ``CRM_TEST_DATABASE_URL`` to run on PostgreSQL (a database that the tests may fill and
empty); the default is a fresh SQLite file per test. Fixtures:

- ``crm_url``: the database URL of this test, schema created, empty.
- ``crm``: a :class:`crmcore.CRM` opened on it with no entry-point plugins; ``make_crm(plugins=[...])``
  opens one with your plugin registered in code.
- ``uow``: a unit of work on ``crm`` that commits at the end of the test.
- ``cli``: run the ``crm`` command in-process: ``result = cli("customer", "list", "--json")``, with
  the plugins the test's ``crm`` / last ``make_crm`` was opened with (``plugins=`` overrides them)
  and ``--user tester`` (``user=`` overrides it; once users exist it must be one of them).
- ``crm_user``: ``crm_user("sales")`` adds (once) an active user with those roles to ``crm`` and
  returns the username; ``crm_as("sales")`` is a unit of work acting as that user.
- ``frozen_clock``: every ``uow.now()`` of the test's CRMs returns ``frozen_clock()`` (Monday
  3 June 2030, 08:00 UTC) until ``frozen_clock.set(...)`` / ``frozen_clock.advance(hours=2)``.
- ``api_client``: ``api_client("sales")`` is an HTTP client of ``crm``'s API (``crm serve``'s app)
  sending a bearer token of that user.

Adding a user ends single-user mode, so the first ``crm_user`` call also adds ``tester`` (the
``cli`` fixture's default user) as an admin.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from crmcore.app import CRM
from crmcore.db.base import metadata
from crmcore.db.engine import create_crm_engine

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from crmcore.uow import UnitOfWork

TEST_URL_ENV = "CRM_TEST_DATABASE_URL"


def test_database_url() -> str | None:
    return os.environ.get(TEST_URL_ENV) or None


def is_postgres() -> bool:
    url = test_database_url()
    return url is not None and make_url(url).get_backend_name() == "postgresql"


def test_engine_name() -> str:
    """The engine the suite runs on: "postgresql" when CRM_TEST_DATABASE_URL names one, else "sqlite"."""
    url = test_database_url()
    return make_url(url).get_backend_name() if url else "sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine(name): the test exercises one engine's own path (\"sqlite\" or "
                            "\"postgresql\"); it is deselected, not skipped, on the other engine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests of the other engine: an engine-specific path has no meaning there, and a
    skip would hide a test that should have run."""
    engine = test_engine_name()
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("engine")
        (drop if marker is not None and engine not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def reset_database(engine: Engine) -> None:
    """Drop every table in the database (including alembic_version) and recreate the models'."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        metadata.drop_all(engine)
    metadata.create_all(engine)


def truncate_all(engine: Engine) -> None:
    """Empty every table of the models (creating tables of plugins imported since the last test)."""
    if engine.dialect.name == "postgresql":
        _empty_postgresql(engine)
        return
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        for t in reversed(metadata.sorted_tables):
            conn.execute(t.delete())


def _empty_postgresql(engine: Engine) -> None:
    """Between tests on PostgreSQL: TRUNCATE only the tables a test wrote to, and restart only the
    sequences it used. Truncating all ~100 tables each time rewrote every table's files and cost
    about a second a test (measured); a test touches a handful, found in one round trip."""
    with engine.begin() as conn:
        existing = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
        missing = [t for t in metadata.sorted_tables if t.name not in existing]
        if missing:
            metadata.create_all(conn, tables=missing, checkfirst=True)
        names = [t.name for t in metadata.sorted_tables]
        probe = " UNION ALL ".join(f'SELECT {i} WHERE EXISTS (SELECT 1 FROM "{n}")' for i, n in enumerate(names))
        written = [names[i] for i in conn.execute(text(probe)).scalars()] if names else []
        if written:
            conn.execute(text(f"TRUNCATE {', '.join(chr(34) + n + chr(34) for n in written)} CASCADE"))
        conn.execute(text("SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false) "
                          "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"))


@pytest.fixture(scope="session")
def _crm_pg_engine() -> Iterator[Engine | None]:
    url = test_database_url()
    if not url or make_url(url).get_backend_name() != "postgresql":
        yield None
        return
    engine = create_crm_engine(url)
    relax_durability(engine)
    reset_database(engine)
    yield engine
    engine.dispose()


def relax_durability(engine: Engine) -> None:
    """A test database need not survive a server crash: commits do not wait for the WAL flush
    (``synchronous_commit = off`` for every later connection, the CLI's subprocesses included).
    Atomicity, isolation and what a killed client leaves are unchanged, so every test still
    means what it says; the suite just stops waiting on the disk thousands of times."""
    with engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
        conn.commit()
    engine.dispose()  # connections opened from now on take the setting


@pytest.fixture
def crm_url(tmp_path: Any, _crm_pg_engine: Engine | None) -> Iterator[str]:
    if _crm_pg_engine is not None:
        truncate_all(_crm_pg_engine)
        # tables created by a test outside the metadata (migrations tests) are dropped by them
        yield _crm_pg_engine.url.render_as_string(hide_password=False)
        return
    url = f"sqlite:///{tmp_path / f'crm-{uuid.uuid4().hex[:8]}.db'}"
    engine = create_crm_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def crm_plugins() -> dict[str, Any]:
    """The plugins the test's ``make_crm`` / ``crm`` was last opened with; ``cli`` uses them too."""
    return {"plugins": ()}


@pytest.fixture
def make_crm(crm_url: str, crm_plugins: dict[str, Any]) -> Iterator[Callable[..., CRM]]:
    opened: list[CRM] = []

    def factory(plugins: Any = (), entry_points: bool = False, **kw: Any) -> CRM:
        c = CRM.open(crm_url, plugins=plugins, entry_points=entry_points, config=kw.pop("config", {}), **kw)
        crm_plugins["plugins"] = tuple(plugins)
        if crm_plugins.get("clock") is not None:  # the test froze time: every CRM it opens sees it
            c.clock = crm_plugins["clock"]  # type: ignore[attr-defined]
        opened.append(c)
        crm_plugins.setdefault("opened", []).append(c)
        return c

    yield factory
    for c in opened:
        c.close()


@pytest.fixture
def crm(make_crm: Callable[..., CRM]) -> CRM:
    return make_crm()


@pytest.fixture
def uow(crm: CRM) -> Iterator[Any]:
    with crm.unit_of_work(actor="test") as u:
        yield u


@pytest.fixture
def cli(crm_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, crm_plugins: dict[str, Any]) -> Callable[..., Result]:
    """Run ``crm`` in-process against the test database; returns click's Result.

    The plugins are the ones the test's ``crm`` fixture (or last ``make_crm``) was opened with,
    unless ``plugins=`` is given; ``user=`` sets ``--user`` (default ``tester``).
    """
    from crmcore.cli import build_cli

    monkeypatch.chdir(tmp_path)  # no stray crm.toml / crm.db from the working directory
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)

    def run(*args: str, input: str | None = None, plugins: Any = None, database: str | None = None,
            user: str = "tester") -> Result:
        runner = CliRunner()
        chosen = crm_plugins["plugins"] if plugins is None else tuple(plugins)
        return runner.invoke(build_cli(tuple(chosen)), ["--database", database or crm_url, "--user", user, *args],
                             input=input, catch_exceptions=False)

    return run


@pytest.fixture
def empty_database_url(tmp_path: Any) -> Iterator[str]:
    """A URL of a brand-new, empty database (for migration tests): a SQLite file, or on
    PostgreSQL a database created for this test on the server of ``CRM_TEST_DATABASE_URL``
    and dropped afterwards."""
    url = test_database_url()
    if not url or make_url(url).get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"crm_t_{uuid.uuid4().hex[:12]}"
    admin = create_crm_engine(base.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))  # see relax_durability
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- frozen time ------------------------------------------------------------------------------------

FROZEN_AT = dt.datetime(2030, 6, 3, 8, 0, tzinfo=dt.UTC)  # a Monday morning, far from any DST change


class FrozenClock:
    """A CRM's clock (``crm.clock``): the time every ``uow.now()`` sees; move it with ``set`` / ``advance``."""

    def __init__(self, at: dt.datetime = FROZEN_AT) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def set(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("give an aware datetime (the CRM's times are UTC)")
        self.at = at

    def advance(self, **kw: float) -> None:
        """Move the time on by ``datetime.timedelta(**kw)`` (``hours=2``, ``days=1``)."""
        self.at += dt.timedelta(**kw)


@pytest.fixture
def frozen_clock(crm_plugins: dict[str, Any]) -> FrozenClock:
    """Freeze the time of every CRM the test opens (``crm``, ``make_crm``), before or after this fixture."""
    clock = FrozenClock()
    crm_plugins["clock"] = clock
    for c in crm_plugins.get("opened", []):
        c.clock = clock
    return clock


# -- users by role, an authenticated API client ---------------------------------------------------

ADMIN_USER = "tester"  # the cli fixture's default user: an admin once users exist


def add_user(crm: CRM, *roles: str, username: str | None = None) -> str:
    """An active user with ``roles`` (named after them unless ``username`` is given; no roles:
    the admin ``tester``), added once.

    Adding is done as an existing admin; on a database without users ``tester`` is added first
    as the admin (the first user must be one). A username that exists with other roles is an
    error, so a test never silently runs as the wrong role.
    """
    from sqlalchemy import select

    from crmcore.models import User
    from crmcore.schemas import UserCreate

    name = username or ("_".join(roles) if roles else ADMIN_USER)
    roles = roles or ("admin",)
    with crm.unit_of_work("system", read_only=True) as uow:  # who exists (no actor check: nothing is required)
        users = {u.username: (list(u.roles or []), u.active) for u in uow.session.scalars(select(User))}
    if name in users:
        if sorted(users[name][0]) != sorted(roles) or not users[name][1]:
            raise ValueError(f"user {name!r} exists with roles {users[name][0]} (active: {users[name][1]}), "
                             f"not {list(roles)}; give another username=")
        return name
    admins = [u for u, (r, active) in users.items() if "admin" in r and active]
    actor = admins[0] if admins else ADMIN_USER
    if users and not admins:
        raise ValueError("the test's users include no active admin to add more users as")
    with crm.unit_of_work(actor) as uow:
        if not users and name != ADMIN_USER:
            uow.users.add(UserCreate(username=ADMIN_USER, display_name="Tester", roles=["admin"]))
        uow.users.add(UserCreate(username=name, display_name=name.replace("_", " ").title(), roles=list(roles)))
    return name


@pytest.fixture
def crm_user(crm: CRM) -> Callable[..., str]:
    """``crm_user("sales", "manager", username=None)``: the username of a user with those roles on ``crm``."""
    def make(*roles: str, username: str | None = None) -> str:
        return add_user(crm, *roles, username=username)

    return make


@pytest.fixture
def crm_as(crm: CRM) -> Callable[..., AbstractContextManager[UnitOfWork]]:
    """``with crm_as("sales") as uow:``: a unit of work on ``crm`` acting as a user with those roles."""
    def unit(*roles: str, username: str | None = None, read_only: bool = False) -> AbstractContextManager[UnitOfWork]:
        return crm.unit_of_work(add_user(crm, *roles, username=username), read_only=read_only)

    return unit


@pytest.fixture
def api_client(crm: CRM) -> Callable[..., TestClient]:
    """``api_client("sales")``: a ``TestClient`` of ``crm``'s HTTP API (with its plugins' routes)
    that sends a bearer token of a user with those roles (``username=`` picks the user; no role: an
    admin). ``client.username`` names the user. Errors come back as responses, as a server sends them."""
    from fastapi.testclient import TestClient

    from crmcore.api import create_app
    from crmcore.api.auth import TokenService

    app = create_app(crm)

    def client(*roles: str, username: str | None = None) -> TestClient:
        name = add_user(crm, *roles, username=username)
        with crm.unit_of_work(name) as uow:
            token = TokenService(uow).create(name, "test")[1]
        c = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"})
        c.username = name
        return c

    return client


from crmcore.testing_layout import assert_plugin_layout, plugin_layout_problems  # noqa: E402 - the layout check, for plugin tests

__all__ = ["FROZEN_AT", "FrozenClock", "add_user", "assert_plugin_layout", "is_postgres", "plugin_layout_problems", "reset_database", "test_database_url",
           "test_engine_name", "truncate_all"]
