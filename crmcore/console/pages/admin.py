"""Administration pages: users and roles, plugins (enable and disable with the same calls and
checks as ``crm plugins enable/disable``), and the audit log with filters and paging.

Users and the audit log need ``user.manage``; plugins need ``plugin.manage`` (the CLI's check,
:func:`crmcore.permissions.check_actor`). A plugin enabled here runs its migrations at once; its
hooks join the running server when it is restarted (the console says so).
"""
from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from crmcore import permissions
from crmcore.console.web import View, page, status_for
from crmcore.errors import CRMError, InvalidInput
from crmcore.schemas import UserRead

AUDIT_PAGE = 50
AUDIT_FILTERS = ("entity", "entity_id", "actor", "action")


def routes() -> list[Any]:
    return [Route("/admin", page(users, permission="user.manage"), methods=["GET"]),
            Route("/admin/plugins", page(plugins, permission="plugin.manage"), methods=["GET"]),
            Route("/admin/plugins/{pid}/{verb:str}", page(plugin_switch, permission="plugin.manage"), methods=["POST"]),
            Route("/admin/audit", page(audit, permission="user.manage"), methods=["GET"])]


def users(view: View) -> Response:
    with view.unit() as uow:
        rows = [UserRead.model_validate(u).model_dump() for u in uow.users.list()]
    table = view.crm.permissions.role_table()
    return view.render("admin/users.html", users=rows, perms=table, roles=list(view.crm.permissions.roles))


def _plugin_rows(view: View) -> list[dict[str, Any]]:
    """What ``crm plugins list`` shows, from the same CRM calls (no migration columns: they need
    the migration runner, which is the CLI's business)."""
    crm = view.crm
    installed, enabled = crm.installed_plugins(), crm.enabled_ids()
    rows = []
    for pid, info in sorted(installed.items()):
        rows.append({"id": pid, "version": info.version, "description": info.description, "requires": list(info.requires),
                     "code": info.source == "code", "enabled": pid in enabled or info.source == "code",
                     "loaded": pid in crm.hooks.plugins, "active": pid in view.active,
                     "error": crm.unavailable[pid].error if pid in crm.unavailable else info.error})
    return rows


def plugins(view: View, error: tuple[str, str] | None = None, status: int = 200) -> Response:
    return view.render("admin/plugins.html", status=status, plugins=_plugin_rows(view), error=error)


def plugin_switch(view: View) -> Response:
    """Enable or disable, as the CLI does: the actor's permission checked, then the CRM's call
    (requirements, dependants, migrations, the audit entry) — a refusal is shown on the list."""
    pid, verb = view.request.path_params["pid"][:100], view.request.path_params["verb"]
    assert view.me is not None
    try:
        if verb not in ("enable", "disable"):
            raise InvalidInput(f"unknown action {verb!r}: enable or disable")
        permissions.check_actor(view.crm, view.me.username, "plugin.manage")
        if verb == "enable":
            view.crm.enable_plugin(pid, actor=view.me.username)
        else:
            view.crm.disable_plugin(pid, actor=view.me.username)
    except CRMError as e:
        return plugins(view, (pid, str(e)), status=status_for(e))
    loaded = pid in view.crm.hooks.plugins
    message = (view._("Plugin %(id)s enabled.", id=pid) if loaded else
               view._("Plugin %(id)s enabled; restart `crm serve` to load it.", id=pid)) if verb == "enable" else \
        view._("Plugin %(id)s disabled; its data is kept.", id=pid)
    return view.redirect("/admin/plugins", flash=message)


def audit(view: View) -> Response:
    raw = {k: view.arg(k)[:64] for k in AUDIT_FILTERS}
    before = view.arg("before")
    errors: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    cursor = int(before) if before.isdigit() and len(before) < 19 else None
    if before and cursor is None:
        errors["before"] = view._("Not a page of the audit log.")
    try:
        with view.unit() as uow:
            rows = uow.audit.list(raw["entity"] or None, raw["entity_id"] or None, AUDIT_PAGE + 1,
                                  actor=raw["actor"] or None, action=raw["action"] or None, before=cursor)
            entries = [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity,
                        "entity_id": e.entity_id, "before": e.before, "after": e.after} for e in rows]
    except InvalidInput as e:
        errors.update({k.replace(" ", "_"): m for k, m in (e.errors or [("_", str(e))])})
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    filters = {k: v for k, v in raw.items() if v}
    return view.render("admin/audit.html", status=422 if errors else 200, entries=entries, raw=raw, errors=errors,
                       next_url=view.url("/admin/audit", **filters, before=entries[-1]["id"]) if more else None,
                       first_url=view.url("/admin/audit", **filters) if cursor else None)
