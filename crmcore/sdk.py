"""The public plugin SDK: the one door through which a plugin reaches the core.

Everything a plugin needs beyond the core's public modules is re-exported here under a stable,
documented name (the plugin guide's helper table lists them). A plugin imports only from:

- ``crmcore`` and ``crmcore.sdk`` (this module);
- the entity and schema modules it builds on: ``crmcore.models``, ``crmcore.schemas``,
  ``crmcore.db``, ``crmcore.db.types``, ``crmcore.enums``, ``crmcore.errors``, ``crmcore.profile``,
  ``crmcore.uow`` (see :data:`PUBLIC_MODULES`);
- ``crmcore.testing`` (fixtures) in its tests and its own ``testing`` module.

Never a name that starts with ``_``, never ``crmcore.cli.*``, ``crmcore.api.*``,
``crmcore.bulk.*`` or ``crmcore.services.*`` directly: those are the core's internals and may
change. ``tests/test_sdk_boundary.py`` fails CI when a shipped plugin or example does.

Names are imported on first use (PEP 562), like ``crmcore`` itself, so importing the SDK for a
``hookimpl`` does not load the HTTP API or the CLI.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: modules a plugin may import from directly (besides ``crmcore`` and ``crmcore.sdk``)
PUBLIC_MODULES: frozenset[str] = frozenset({
    "crmcore", "crmcore.sdk", "crmcore.models", "crmcore.schemas", "crmcore.db", "crmcore.db.types", "crmcore.db.dates",
    "crmcore.enums", "crmcore.errors", "crmcore.profile", "crmcore.uow", "crmcore.hookspecs",
    "crmcore.testing", "crmcore.testing_concurrency", "crmcore.statemachine", "crmcore.businesstime",
    "crmcore.visibility", "crmcore.console",
})

# public name -> (module, name there)
_EXPORTS: dict[str, tuple[str, str]] = {
    # serialisation and references
    "jsonable": ("crmcore.services._base", "jsonable"),
    "new_ref": ("crmcore.services._base", "new_ref"),
    # money, currency and text parsing (the core's own rules)
    "parse_money": ("crmcore.schemas.fields", "_money"),
    "parse_currency": ("crmcore.schemas.fields", "_currency"),
    "check_amount": ("crmcore.schemas.account", "check_amount"),
    "normalise_phone": ("crmcore.schemas.fields", "normalise_phone"),
    "normalise_email": ("crmcore.schemas.fields", "normalise_email"),
    "no_control": ("crmcore.schemas.fields", "no_control"),
    **{n: ("crmcore.schemas.fields", n) for n in ("CountryCode", "CurrencyCode", "Email", "LongText", "MoneyAmount",
                                                   "Phone", "Ref", "ShortText", "Text", "UTCDatetime", "MAX_AMOUNT")},
    # columns
    "enum_column": ("crmcore.models._columns", "enum_column"),
    "Money": ("crmcore.db.types", "Money"),
    "UTCDateTime": ("crmcore.db.types", "UTCDateTime"),
    "utcnow": ("crmcore.db.types", "utcnow"),
    # date arithmetic in SQL (one definition for every plugin)
    **{n: ("crmcore.db.dates", n) for n in ("day_number", "days_between", "day_sql", "day_of", "date_of")},
    # limits
    "MAX_ID": ("crmcore.limits", "MAX_ID"),
    "valid_id": ("crmcore.limits", "valid_id"),
    "check_text": ("crmcore.limits", "check_text"),
    "clean_text": ("crmcore.schemas.fields", "clean_text"),
    "text_problem": ("crmcore.limits", "text_problem"),
    **{n: ("crmcore.limits", n) for n in ("EARLIEST", "LATEST", "check_window")},
    # settings
    "PluginSettings": ("crmcore.settings", "PluginSettings"),
    "load_plugin_settings": ("crmcore.settings", "load_plugin_settings"),
    # roles a plugin adds (before its Permission declarations name them)
    "declare_role": ("crmcore.permissions", "declare_role"),
    "Role": ("crmcore.plugin_roles", "Role"),
    # vocabularies an installation configures in crm.toml [vocabularies]
    "declare_vocabulary": ("crmcore.vocabularies", "declare_vocabulary"),
    "vocabularies_of": ("crmcore.vocabularies", "of"),
    "Vocabularies": ("crmcore.vocabularies", "Vocabularies"),
    # errors
    "validation_errors": ("crmcore.errors", "validation_errors"),
    "invalid_input": ("crmcore.errors", "invalid_input"),
    # HTTP routes: one request = one unit of work, visibility applied
    "unit": ("crmcore.api.app", "unit"),
    "visible_customer": ("crmcore.api.app", "visible_customer"),
    "PROBLEMS": ("crmcore.api.app", "PROBLEMS"),
    # CLI: context, output (table or --json), parameter types
    "AppContext": ("crmcore.cli.context", "AppContext"),
    "CRMGroup": ("crmcore.cli.context", "CRMGroup"),
    "pass_app": ("crmcore.cli.context", "pass_app"),
    "emit_json": ("crmcore.cli.output", "emit_json"),
    "table": ("crmcore.cli.output", "table"),
    "fields": ("crmcore.cli.output", "fields"),
    "validate": ("crmcore.cli.output", "validate"),
    "console": ("crmcore.cli.output", "console"),
    "echo": ("crmcore.cli.output", "echo"),
    "safe": ("crmcore.cli.output", "safe"),
    "resolve_customer": ("crmcore.cli.customers", "resolve_customer"),
    **{n: ("crmcore.cli.params", n) for n in ("ID", "CUSTOMER", "DATETIME", "DATE", "TEXT", "SEARCH", "USERNAME",
                                               "Number", "DateTimeType", "DateType", "TextType", "SEED", "VERSION")},
    # bulk import/export
    "BulkEntity": ("crmcore.bulk.registry", "BulkEntity"),
    "BatchOutcome": ("crmcore.bulk.registry", "BatchOutcome"),
    "keyed_upsert": ("crmcore.bulk.registry", "keyed_upsert"),
    "import_command": ("crmcore.bulk.cli", "import_"),
    "customer_ids_by_ref": ("crmcore.bulk.registry", "customer_ids_by_ref"),
    "unknown_customer": ("crmcore.bulk.registry", "unknown_customer"),
    "user_ids_by_name": ("crmcore.bulk.registry", "user_ids_by_name"),
    # contract objects (also in ``crmcore``)
    **{n: ("crmcore", n) for n in ("CRM", "UnitOfWork", "hookimpl", "hookspec", "Permission", "PermissionDenied",
                                   "MigrationBranch", "ProfileSection", "ProfileTable", "TimelineEntry", "Veto",
                                   "CRMError", "InvalidInput", "NotFound", "Conflict", "StaleVersion", "Vetoed")},
}

__all__ = sorted([*_EXPORTS, "PUBLIC_MODULES"])


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'crmcore.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from crmcore import (
        CRM,
        Conflict,
        CRMError,
        InvalidInput,
        MigrationBranch,
        NotFound,
        Permission,
        PermissionDenied,
        ProfileSection,
        ProfileTable,
        StaleVersion,
        TimelineEntry,
        UnitOfWork,
        Veto,
        Vetoed,
        hookimpl,
        hookspec,
    )
    from crmcore.api.app import PROBLEMS, unit, visible_customer
    from crmcore.bulk.cli import import_ as import_command
    from crmcore.bulk.registry import (
        BatchOutcome,
        BulkEntity,
        customer_ids_by_ref,
        keyed_upsert,
        unknown_customer,
        user_ids_by_name,
    )
    from crmcore.cli.context import AppContext, CRMGroup, pass_app
    from crmcore.cli.customers import resolve_customer
    from crmcore.cli.output import console, echo, emit_json, fields, safe, table, validate
    from crmcore.cli.params import (
        CUSTOMER,
        DATE,
        DATETIME,
        ID,
        SEARCH,
        SEED,
        TEXT,
        USERNAME,
        VERSION,
        DateTimeType,
        DateType,
        Number,
        TextType,
    )
    from crmcore.db.dates import date_of, day_number, day_of, day_sql, days_between
    from crmcore.db.types import Money, UTCDateTime, utcnow
    from crmcore.errors import invalid_input, validation_errors
    from crmcore.limits import EARLIEST, LATEST, MAX_ID, check_text, check_window, text_problem, valid_id
    from crmcore.models._columns import enum_column
    from crmcore.permissions import declare_role
    from crmcore.plugin_roles import Role
    from crmcore.schemas.account import check_amount
    from crmcore.schemas.fields import (
        MAX_AMOUNT,
        CountryCode,
        CurrencyCode,
        Email,
        LongText,
        MoneyAmount,
        Phone,
        Ref,
        ShortText,
        Text,
        UTCDatetime,
        clean_text,
        no_control,
        normalise_email,
        normalise_phone,
    )
    from crmcore.schemas.fields import _currency as parse_currency
    from crmcore.schemas.fields import _money as parse_money
    from crmcore.services._base import jsonable, new_ref
    from crmcore.settings import PluginSettings, load_plugin_settings
    from crmcore.vocabularies import Vocabularies, declare_vocabulary
    from crmcore.vocabularies import of as vocabularies_of
