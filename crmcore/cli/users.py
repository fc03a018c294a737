"""`crm user …`: staff users, their roles, and what each role may do."""
from __future__ import annotations

import sys

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, table, validate
from crmcore.enums import Role
from crmcore.schemas import UserCreate, UserRead

ROLE_HELP = ", ".join(r.value for r in Role)


def register(cli: click.Group) -> None:
    from crmcore.cli.tokens import token

    user.add_command(token)
    cli.add_command(user)


@click.group(cls=CRMGroup)
def user() -> None:
    """Staff users and roles. The first user must be an admin; from then on every command acts
    as an existing, active user (--user or CRM_USER) and is checked against its roles."""


@user.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True)
@click.option("--email")
@click.option("--role", "roles", multiple=True, help=ROLE_HELP)
@pass_app
def user_add(app: AppContext, username: str, display_name: str, email: str | None, roles: tuple[str, ...]) -> None:
    """Add a user (needs user.manage; the first user must have the admin role)."""
    data = validate(UserCreate, username=username, display_name=display_name, email=email, roles=list(roles) or None)
    with app.crm().unit_of_work(app.actor) as uow:
        first = uow.single_user
        u = uow.users.add(data)
        click.echo(f"added user {u.username} (id {u.id}, roles {', '.join(u.roles)})")
    if first:
        click.echo(f"single-user mode has ended: act as an existing user from now on (--user {u.username} or CRM_USER)")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def user_list(app: AppContext, as_json: bool) -> None:
    """List users, with their roles and whether they are active."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        users = [UserRead.model_validate(u).model_dump() for u in uow.users.list()]
    if as_json:
        emit_json(users)
    elif not users:
        click.echo("no users: the CRM runs in single-user mode (everyone may do everything)")
    else:
        table("users", ["id", "username", "name", "roles", "active"],
              [[u["id"], u["username"], u["display_name"], ", ".join(u["roles"]), "yes" if u["active"] else "no"] for u in users])


@user.command("roles")
@click.argument("username")
@click.argument("roles", nargs=-1, required=True)
@pass_app
def user_roles(app: AppContext, username: str, roles: tuple[str, ...]) -> None:
    """Replace a user's roles: `crm user roles anna sales manager`.

    Roles: admin, manager, sales, marketing, credit_controller, viewer.
    """
    with app.crm().unit_of_work(app.actor) as uow:
        u = uow.users.set_roles(username, roles)
        click.echo(f"user {u.username} now has roles {', '.join(u.roles)}")


@user.command("deactivate")
@click.argument("username")
@pass_app
def user_deactivate(app: AppContext, username: str) -> None:
    """Stop a user from acting (history and ownership stay)."""
    with app.crm().unit_of_work(app.actor) as uow:
        uow.users.set_active(username, False)
    click.echo(f"deactivated user {username}")


@user.command("activate")
@click.argument("username")
@pass_app
def user_activate(app: AppContext, username: str) -> None:
    """Let a deactivated user act again."""
    with app.crm().unit_of_work(app.actor) as uow:
        uow.users.set_active(username, True)
    click.echo(f"activated user {username}")


@user.command("permissions")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def user_permissions(app: AppContext, as_json: bool) -> None:
    """Every permission (core and loaded plugins) and the roles holding it, after crm.toml's [roles.*]."""
    rows = app.crm().permissions.role_table()
    if as_json:
        emit_json(rows)
        return
    roles = app.crm().permissions.roles  # the core's and those of loaded plugins
    table("permissions by role", ["permission", "owner", *roles],
          [[r["permission"], r["owner"], *("x" if r[role] else "" for role in roles)] for r in rows])


@user.command("password")
@click.argument("username")
@pass_app
def user_password(app: AppContext, username: str) -> None:
    """Set USERNAME's web console password (prompted twice; read from standard input when it is
    not a terminal, one line). At least 10 characters; the user's console sessions end."""

    from crmcore.console.auth import check_password_text

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    check_password_text(password)  # before the database is opened: a short password is one line, exit 1
    from crmcore.console.auth import set_password

    with app.crm().unit_of_work(app.actor) as uow:
        u = set_password(uow, username, password)
        name = u.username
    click.echo(f"password of {name} set; they sign in to the console at /console (crm serve)")


@user.group("sessions", cls=CRMGroup)
def user_sessions() -> None:
    """Web console sessions of a user."""


@user_sessions.command("revoke")
@click.argument("username")
@pass_app
def user_sessions_revoke(app: AppContext, username: str) -> None:
    """End every console session of USERNAME at once (they must sign in again)."""
    from crmcore.console.auth import revoke_sessions

    with app.crm().unit_of_work(app.actor) as uow:
        n = revoke_sessions(uow, username)
    click.echo(f"revoked {n} console session{'' if n == 1 else 's'} of {username}")
