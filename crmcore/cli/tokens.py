"""``crm user token create|list|revoke``: API tokens (shown once, stored as a hash)."""
from __future__ import annotations

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, table


@click.group(cls=CRMGroup)
def token() -> None:
    """API tokens for `crm serve`: create (shown once), list, revoke."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="api", show_default=True, help="What the token is for (shown in lists).")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Expire after N days (default: never).")
@pass_app
def token_create(app: AppContext, username: str, name: str, expires_days: int | None) -> None:
    """Create a token for USERNAME and print it (it is not stored and cannot be shown again)."""
    from crmcore.services.tokens import TokenService

    with app.crm().unit_of_work(app.actor) as uow:
        row, secret = TokenService(uow).create(username, name, expires_days)
        token_id = row.id
    click.echo(secret)
    click.echo(f"token {token_id} for {username} created; keep it now, it is shown only once", err=True)


@token.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def token_list(app: AppContext, username: str | None, as_json: bool) -> None:
    """Tokens (never the secret: its first characters, state and dates)."""
    from crmcore.services.tokens import TokenService

    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        uow.require("user.manage")
        rows = [{"id": t.id, "user": u, "name": t.name, "prefix": t.prefix, "created_at": t.created_at,
                 "expires_at": t.expires_at, "revoked_at": t.revoked_at} for t, u in TokenService(uow).list(username)]
    if as_json:
        emit_json(rows)
        return
    table("API tokens", ["id", "user", "name", "starts with", "created", "expires", "revoked"], [list(r.values()) for r in rows])


@token.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**63 - 1))
@pass_app
def token_revoke(app: AppContext, token_id: int) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    from crmcore.services.tokens import TokenService

    with app.crm().unit_of_work(app.actor) as uow:
        TokenService(uow).revoke(token_id)
    click.echo(f"token {token_id} revoked")
