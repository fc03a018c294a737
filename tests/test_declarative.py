"""A plugin module may declare PERMISSIONS, SETTINGS, BULK_ENTITIES, COMMANDS, ROUTES and MIGRATIONS
as attributes instead of writing the ``register`` hooks: the core picks them up the same way."""
from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fastapi import APIRouter
from pydantic import BaseModel

from crmcore import CRM, MigrationBranch, Permission, PluginError, hookimpl
from crmcore.bulk.registry import BatchOutcome, BulkEntity, entities
from crmcore.plugins import call_register_hook, describe
from crmcore.settings import PluginSettings


class DeclSettings(PluginSettings):
    greeting: str = "hello"


class Row(BaseModel):
    external_ref: str


def _write(uow: Any, rows: list[Any]) -> BatchOutcome:
    return BatchOutcome(unchanged=len(rows))


@click.group("decl")
def decl_group() -> None:
    """The declared plugin's commands."""


@decl_group.command("ping")
def ping() -> None:
    click.echo("pong")


def declared_plugin(**extra: Any) -> types.ModuleType:
    mod = types.ModuleType("crm_decl")
    mod.PLUGIN_ID = "decl"  # type: ignore[attr-defined]
    mod.PERMISSIONS = (Permission("decl.use", "Use the declared plugin", ("sales",)),)  # type: ignore[attr-defined]
    mod.SETTINGS = DeclSettings  # type: ignore[attr-defined]
    router = APIRouter()

    @router.get("/decl/ping")
    def ping_route() -> dict[str, str]:
        return {"ping": "pong"}

    mod.ROUTES = router  # type: ignore[attr-defined]
    mod.COMMANDS = decl_group  # type: ignore[attr-defined]
    calls: list[int] = []

    def lazy_entities() -> list[BulkEntity]:  # called only when the core asks
        calls.append(1)
        return [BulkEntity(name="decl_rows", columns=("external_ref",), required=("external_ref",), key="external_ref",
                           schema=Row, write_batch=_write, export_rows=lambda uow: iter(()), permission="decl.use")]

    mod.BULK_ENTITIES = lazy_entities  # type: ignore[attr-defined]
    mod.lazy_calls = calls  # type: ignore[attr-defined]
    for k, v in extra.items():
        setattr(mod, k, v)
    return mod


def test_declarations_register_permissions_settings_entities(make_crm: Callable[..., CRM]) -> None:
    mod = declared_plugin()
    crm = make_crm(plugins=[mod])
    assert mod.lazy_calls == []  # nothing imported at open for a declaration nobody asked for
    assert crm.permissions.allows(["sales"], "decl.use")
    assert not crm.permissions.allows(["viewer"], "decl.use")
    assert crm.settings("decl").greeting == "hello"
    assert "decl_rows" in entities(crm)
    assert mod.lazy_calls == [1]


def test_declared_settings_read_crm_toml(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[declared_plugin()], config={"decl": {"greeting": "hi"}})
    assert crm.settings("decl").greeting == "hi"


def test_declared_commands_and_routes_are_added(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[declared_plugin()])
    cli = click.Group()
    crm.hooks.register_commands(cli)
    assert "decl" in cli.commands
    assert CliRunner().invoke(cli, ["decl", "ping"]).output == "pong\n"
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    router = APIRouter()
    crm.hooks.register_routes(router)
    app = FastAPI()
    app.include_router(router)
    assert TestClient(app).get("/decl/ping").json() == {"ping": "pong"}


def test_declared_migrations_are_found_without_a_hook(tmp_path: Path) -> None:
    branch = MigrationBranch(label="decl", versions=tmp_path)
    mod = declared_plugin(MIGRATIONS=branch)
    assert call_register_hook(describe("decl", mod), "crm_register_migrations") == [branch]


def test_declaring_and_registering_the_same_item_counts_it_once(make_crm: Callable[..., CRM]) -> None:
    mod = declared_plugin()

    @hookimpl
    def crm_register_permissions(register: Callable[[Any], None]) -> None:
        for p in mod.PERMISSIONS:
            register(p)

    mod.crm_register_permissions = crm_register_permissions  # type: ignore[attr-defined]
    crm = make_crm(plugins=[mod])  # a permission registered twice would raise
    assert crm.permissions.allows(["sales"], "decl.use")


def test_a_failing_lazy_declaration_names_the_plugin(make_crm: Callable[..., CRM]) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("no entities today")

    crm = make_crm(plugins=[declared_plugin(BULK_ENTITIES=broken)])
    with pytest.raises(PluginError, match="decl.*crm_register_bulk_entities.*no entities today"):
        entities(crm)


def test_string_references_are_imported_when_asked(make_crm: Callable[..., CRM]) -> None:
    mod = declared_plugin(COMMANDS="tests_declarative_target:group", ROUTES=None, BULK_ENTITIES=None)
    crm = make_crm(plugins=[mod])
    with pytest.raises(PluginError, match="decl.*crm_register_commands.*tests_declarative_target"):
        crm.hooks.register_commands(click.Group())
    mod.COMMANDS = f"{__name__}:decl_group"  # type: ignore[attr-defined]
    cli = click.Group()
    crm.hooks.register_commands(cli)
    assert cli.commands["decl"] is decl_group
