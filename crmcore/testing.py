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
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from crmcore.app import CRM
from crmcore.db.base import metadata
from crmcore.db.engine import create_crm_engine

TEST_URL_ENV = "CRM_TEST_DATABASE_URL"


def test_database_url() -> str | None:
    return os.environ.get(TEST_URL_ENV) or None


def is_postgres() -> bool:
    url = test_database_url()
    return url is not None and make_url(url).get_backend_name() == "postgresql"


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
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in reversed(metadata.sorted_tables):
                conn.execute(t.delete())


@pytest.fixture(scope="session")
def _crm_pg_engine() -> Iterator[Engine | None]:
    url = test_database_url()
    if not url or make_url(url).get_backend_name() != "postgresql":
        yield None
        return
    engine = create_crm_engine(url)
    reset_database(engine)
    yield engine
    engine.dispose()


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
        opened.append(c)
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
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
