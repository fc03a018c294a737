"""``crm serve`` (the HTTP API) and ``crm webhooks`` (subscriptions, delivery, dead letters)."""
from __future__ import annotations

import threading
import time
from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, table
from crmcore.limits import MAX_ID


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(webhooks)


@click.command(cls=click.Command)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--deliver-every", type=click.IntRange(0, 86400), default=10, show_default=True,
              help="Seconds between webhook delivery passes in the background (0: never; use `crm webhooks deliver`).")
@click.option("--access-log/--no-access-log", default=None,
              help="Log each request on stderr (default: crm.toml [api] access_log, which is true).")
@pass_app
def serve(app: AppContext, host: str, port: int, workers: int, deliver_every: int, access_log: bool | None) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json; /docs with [api] public_docs) and the web console (/console)."""
    import os

    import uvicorn
    from pydantic import ValidationError

    from crmcore.api.app import ApiSettings
    from crmcore.errors import ConfigError, invalid_input
    from crmcore.webhooks.targets import policy

    crm = app.crm()  # fails here, in one line, if the database is missing or a plugin is broken
    policy(crm.config)  # and if crm.toml [webhooks] is wrong (not at the first delivery)
    try:
        settings = ApiSettings.model_validate(crm.config.get("api", {}) if isinstance(crm.config, dict) else {})
    except ValidationError as e:
        raise ConfigError(f"crm.toml [api]: {invalid_input(e)}") from None
    log = settings.access_log if access_log is None else access_log
    url = crm.engine.url.render_as_string(hide_password=False)
    if deliver_every:
        _background_delivery(url, app.plugins, deliver_every)
    _announce(host, port, workers, settings.public_docs, log)
    # "info" lets uvicorn's access logger through; without the access log only warnings are shown
    level = "info" if log else "warning"
    if workers == 1:
        from crmcore.api import create_app
        from crmcore.console import with_console

        # the web console at /console, beside the API: same process, same units of work
        uvicorn.run(with_console(create_app(crm, settings), crm), host=host, port=port, log_level=level, access_log=log)
        return
    os.environ["CRM_DATABASE_URL"] = url
    uvicorn.run("crmcore.api.asgi:app", host=host, port=port, workers=workers, log_level=level, access_log=log)


def _announce(host: str, port: int, workers: int, public_docs: bool, access_log: bool) -> None:
    """Say where the server listens before it starts (uvicorn's own line only shows at log level info)."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    docs = f"{base}/docs" if public_docs else "off ([api] public_docs = false)"
    click.echo(f"crm serve: API on {base}/ (docs: {docs}; console: {base}/console); {workers} worker(s); "
               f"access log {'on' if access_log else 'off'}", err=True)


def _background_delivery(url: str, plugins: Any, every: int) -> None:
    from crmcore.app import CRM
    from crmcore.webhooks.delivery import deliver

    def loop() -> None:
        crm = CRM.open(url, plugins=plugins)
        while True:
            try:
                deliver(crm)
            except Exception as e:  # noqa: BLE001 - the server goes on; the next pass retries
                click.echo(f"warning: webhook delivery failed: {e}", err=True)
            time.sleep(every)

    threading.Thread(target=loop, name="webhook-delivery", daemon=True).start()


@click.group(cls=CRMGroup)
def webhooks() -> None:
    """Webhook subscriptions, delivery and dead letters."""


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True, help="Event type (repeatable), or '*' for all.")
@click.option("--secret", help="HMAC secret (default: a new random one, printed once).")
@pass_app
def webhooks_add(app: AppContext, url: str, events: tuple[str, ...], secret: str | None) -> None:
    """Subscribe URL to events; deliveries are signed with the secret (X-CRM-Signature).

    URL must be a public http(s) target, or a host named in crm.toml [webhooks] allow_hosts.
    """
    from crmcore.webhooks import subscriptions

    with app.crm().unit_of_work(app.actor) as uow:
        sub, secret = subscriptions.add(uow, url, events, secret)
        sid, events = sub.id, tuple(sub.events)
    click.echo(f"subscription {sid} to {', '.join(sorted(set(events)))} at {url}; secret: {secret}")


@webhooks.command("remove")
@click.argument("subscription_id", type=click.IntRange(1, MAX_ID))
@pass_app
def webhooks_remove(app: AppContext, subscription_id: int) -> None:
    """Stop a subscription (its undelivered events are dropped)."""
    from crmcore.webhooks import subscriptions

    with app.crm().unit_of_work(app.actor) as uow:
        subscriptions.remove(uow, subscription_id)
    click.echo(f"subscription {subscription_id} stopped")


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def webhooks_list(app: AppContext, as_json: bool) -> None:
    """Subscriptions with their pending, delivered and dead deliveries; the latest dead letters
    (an administrator's read, as ``GET /webhooks``)."""
    from crmcore.webhooks.subscriptions import webhooks_overview

    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        data = webhooks_overview(uow)
    subs, dead = data["subscriptions"], data["dead_letters"]
    if as_json:
        emit_json({"subscriptions": subs, "dead_letters": dead})
        return
    table("Webhook subscriptions", ["id", "url", "events", "active", "pending", "delivered", "dead"],
          [[s["id"], s["url"], ", ".join(s["events"]), s["active"], s["pending"], s["delivered"], s["dead"]] for s in subs])
    if dead:
        table("Dead letters (latest)", ["delivery", "subscription", "event", "attempts", "last error"], [list(d.values()) for d in dead])


@webhooks.command("deliver")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=8, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True, help="Seconds per request.")
@pass_app
def webhooks_deliver(app: AppContext, max_attempts: int, timeout: float) -> None:
    """Send the due deliveries once (retries back off exponentially; dead after --max-attempts)."""
    from crmcore.webhooks.delivery import deliver

    run = deliver(app.crm(), max_attempts=max_attempts, timeout=timeout)
    click.echo(f"delivered {run.delivered}, failed {run.failed} (will retry), dead {run.dead}, waiting {run.waiting}")
    for e in run.errors[:10]:
        click.echo(f"  {e}", err=True)
