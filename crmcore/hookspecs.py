"""The hook contract between the core and its plugins.

Every hook is named ``crm_*``, has typed arguments and one docstring with ``:param:`` lines;
``docs/hooks.md`` is checked against this module by ``tests/test_docs.py``. Arguments are
passed by keyword, so an implementation may accept any subset of them.

Three kinds of hook:

- extension hooks, called while the CRM is assembled (``register`` callbacks, as in llm);
- in-transaction events that receive the unit of work (``uow``): handlers may write derived rows
  atomically with the change; anything they raise rolls the whole unit back. Side effects that
  must only happen after a commit (mail, webhooks) go through ``uow.on_commit(callback)``;
- guards that may refuse a change by raising :class:`crmcore.Veto`.

Plugins may publish hooks of their own through :func:`crm_add_hookspecs` (as pytest's
``pytest_addhooks``); their names start with the plugin's prefix (``sales_``), never ``crm_``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click
import pluggy

if TYPE_CHECKING:
    from crmcore.bulk.ledger_import import AccountRef
    from crmcore.customfields import FieldDefinition
    from crmcore.migrations.branches import MigrationBranch
    from crmcore.models import Account, Customer, Interaction, Transaction
    from crmcore.profile import ProfileSection, TimelineEntry
    from crmcore.schemas import TransactionCreate
    from crmcore.uow import UnitOfWork

PROJECT = "crmcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- extension hooks -----------------------------------------------------------------------

@hookspec
def crm_add_hookspecs(register: Callable[[Any], None]) -> None:
    """Publish hook specifications of your own, for other plugins to implement.

    :param register: call with a module or class holding functions marked ``@crmcore.hookspec``;
        called while the plugins are assembled, before any implementation is checked.
    """


@hookspec
def crm_register_settings(register: Callable[[Any], None]) -> None:
    """Declare the plugin's settings (a :class:`crmcore.PluginSettings` subclass).

    :param register: call with the settings class; values come from ``crm.toml`` ``[plugin_id]``
        and ``CRM_<PLUGIN>__<KEY>`` environment variables and are validated when the CRM opens.
    """


@hookspec
def crm_register_permissions(register: Callable[[Any], None]) -> None:
    """Declare the permissions the plugin's services check (``uow.require(name)``).

    :param register: call with a :class:`crmcore.Permission` per permission.
    """


@hookspec
def crm_register_bulk_entities(register: Callable[[Any], None]) -> None:
    """Declare plugin tables that ``crm import`` / ``crm export`` handle through the core bulk path.

    :param register: call with a :class:`crmcore.bulk.registry.BulkEntity` per entity.
    """

@hookspec
def crm_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``crm`` command line.

    :param cli: a click group whose commands are added to the root ``crm`` group; call
        ``cli.add_command(...)`` or use ``@cli.group()``. A command named like a core command is
        ignored (the core's wins).
    """


@hookspec
def crm_register_routes(router: Any) -> None:
    """Add HTTP routes to the API that ``crm serve`` runs, as ``crm_register_commands`` adds commands.

    :param router: a ``fastapi.APIRouter`` included in the app; use ``crmcore.api.app.unit`` to run
        each request in one unit of work as the authenticated user.
    """


@hookspec
def crm_register_migrations(register: Callable[[MigrationBranch], None]) -> None:
    """Declare the plugin's alembic branch so ``crm db`` and ``crm plugins enable`` can run it.

    :param register: call with a :class:`crmcore.MigrationBranch` (label, versions directory).
    """


@hookspec
def crm_register_custom_fields(register: Callable[[FieldDefinition], None]) -> None:
    """Declare custom customer attributes; values are validated against them on every write.

    :param register: call with a :class:`crmcore.FieldDefinition` per field.
    """


@hookspec
def crm_customer_profile_sections(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    """Contribute a section to the customer's 360° view (``crm customer show``).

    :param uow: the unit of work of the view (read from it; do not write).
    :param customer: the customer being shown.
    :return: a :class:`crmcore.ProfileSection`, or None to show nothing.
    """


@hookspec
def crm_customer_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    """Contribute entries to the customer's timeline (``crm customer show``), merged by date.

    :param uow: the unit of work of the view (read from it; do not write).
    :param customer: the customer being shown.
    :return: a list of :class:`crmcore.TimelineEntry`, or None.
    """


# -- web console -----------------------------------------------------------------------------

@hookspec
def crm_console_register(register: Callable[[Any], None]) -> None:
    """Contribute to the web console: navigation entries, pages, template folders, catalogues.

    :param register: call with :class:`crmcore.console.NavEntry`, :class:`crmcore.console.ConsolePage`,
        :class:`crmcore.console.ConsoleTemplates` or :class:`crmcore.console.ConsoleCatalog` objects;
        called once when ``crm serve`` builds the console.
    """


@hookspec
def crm_console_home_cards(uow: UnitOfWork, user: Any) -> Any:
    """Cards for the console's home page of the signed-in user.

    :param uow: the page's read-only unit of work (acting as the signed-in user).
    :param user: the signed-in user's row (``username``, ``roles``, ...).
    :return: a :class:`crmcore.console.HomeCard`, a list of them, or None.
    """


@hookspec
def crm_console_customer_sections(uow: UnitOfWork, customer: Customer, profile: dict[str, Any]) -> Any:
    """Sections of the console's 360° page drawn with the plugin's own template.

    :param uow: the page's read-only unit of work (acting as the signed-in user).
    :param customer: the customer shown (the user may see it).
    :param profile: the 360° view as data (``uow.profiles.get``), as the page received it.
    :return: a :class:`crmcore.console.ConsoleSection`, a list of them, or None.
    """


@hookspec
def crm_console_authenticate(uow: UnitOfWork, request: Any, username: str, password: str) -> str | None:
    """Sign-in: accept a user another way than the console password (LDAP, single sign-on).

    :param uow: the sign-in's unit of work (written: failed attempts and the audit entry).
    :param request: the Starlette request of the sign-in form (headers, client address).
    :param username: what was typed as the user name.
    :param password: what was typed as the password.
    :return: the username of an existing, active user to sign in as, or None to let the next
        plugin (and finally the password check) decide; raise :class:`crmcore.Veto` to refuse.
    """


# -- in-transaction events -----------------------------------------------------------------

@hookspec
def crm_customer_created(uow: UnitOfWork, customer: Customer) -> None:
    """A customer was created (flushed, so ``customer.id`` is set).

    :param uow: the unit of work the creation belongs to.
    :param customer: the new customer.
    """


@hookspec
def crm_customer_updated(uow: UnitOfWork, customer: Customer, changes: dict[str, tuple[Any, Any]]) -> None:
    """A customer's fields changed.

    :param uow: the unit of work.
    :param customer: the customer after the change.
    :param changes: field name -> (before, after) for each changed field.
    """


@hookspec
def crm_customer_archived(uow: UnitOfWork, customer: Customer) -> None:
    """A customer was archived (soft-deleted).

    :param uow: the unit of work.
    :param customer: the archived customer.
    """


@hookspec
def crm_interaction_logged(uow: UnitOfWork, interaction: Interaction) -> None:
    """A touchpoint was recorded on a customer's timeline.

    :param uow: the unit of work.
    :param interaction: the new interaction.
    """


@hookspec
def crm_interaction_updated(uow: UnitOfWork, interaction: Interaction, changes: dict[str, tuple[Any, Any]]) -> None:
    """An interaction's fields changed.

    :param uow: the unit of work.
    :param interaction: the interaction after the change.
    :param changes: field name -> (before, after) for each changed field.
    """


@hookspec
def crm_transaction_posted(uow: UnitOfWork, transaction: Transaction) -> None:
    """An entry was posted to an account (the balance is already updated).

    :param uow: the unit of work.
    :param transaction: the posted entry.
    """


@hookspec
def crm_customers_batch(uow: UnitOfWork, created_ids: Sequence[int], updated_ids: Sequence[int]) -> None:
    """Bulk path: a batch of customers was created or updated (one call per batch, not per row).

    :param uow: the batch's unit of work.
    :param created_ids: ids of the customers created by the batch.
    :param updated_ids: ids of the customers whose fields changed.
    """


@hookspec
def crm_interactions_batch(uow: UnitOfWork, interaction_ids: Sequence[int]) -> None:
    """Bulk path: a batch of interactions was recorded.

    :param uow: the batch's unit of work.
    :param interaction_ids: ids of the new interactions.
    """


@hookspec
def crm_interactions_updated_batch(uow: UnitOfWork, interaction_ids: Sequence[int]) -> None:
    """Bulk path: a batch of existing interactions was updated (one call per batch).

    :param uow: the batch's unit of work.
    :param interaction_ids: ids of the interactions whose fields changed.
    """


@hookspec
def crm_transactions_batch(uow: UnitOfWork, transaction_ids: Sequence[int]) -> None:
    """Bulk path: a batch of entries was posted (balances already updated).

    :param uow: the batch's unit of work.
    :param transaction_ids: ids of the new entries.
    """


# -- guards ----------------------------------------------------------------------------------

@hookspec
def crm_before_transaction_post(uow: UnitOfWork, account: Account, entry: TransactionCreate) -> None:
    """Guard: raise :class:`crmcore.Veto` to refuse posting this entry (e.g. a credit hold).

    :param uow: the unit of work.
    :param account: the account the entry would be posted to.
    :param entry: the validated entry, not yet written.
    """


@hookspec
def crm_before_transactions_batch(
    uow: UnitOfWork, entries: Sequence[tuple[AccountRef, TransactionCreate]]
) -> dict[int, str] | None:
    """Guard for the bulk path: refuse some entries of a batch; the others are posted.

    :param uow: the batch's unit of work.
    :param entries: (account, entry) pairs about to be posted, in file order; the account is a
        light :class:`crmcore.bulk.ledger_import.AccountRef` (id, customer_id, currency, status,
        payment_terms_days), not an ORM object.
    :return: {index in ``entries``: reason} for each refused entry, or None.
    """


@hookspec
def crm_before_customer_archive(uow: UnitOfWork, customer: Customer) -> None:
    """Guard: raise :class:`crmcore.Veto` to refuse archiving this customer.

    :param uow: the unit of work.
    :param customer: the customer about to be archived (not yet changed).
    """


@hookspec
def crm_before_customer_merge(uow: UnitOfWork, source: Customer, target: Customer) -> None:
    """Guard: raise :class:`crmcore.Veto` to refuse merging ``source`` into ``target``.

    :param uow: the unit of work.
    :param source: the customer that would be archived as merged.
    :param target: the customer that would keep everything.
    """


# -- merge -----------------------------------------------------------------------------------

@hookspec
def crm_merge_customers(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int] | None:
    """Customer ``source_id`` is being merged into ``target_id``: re-point the rows you own.

    :param uow: the unit of work of the merge.
    :param source_id: the customer that will be archived as merged.
    :param target_id: the customer that keeps everything.
    :return: {table name: rows re-pointed}, reported to the admin.
    """
