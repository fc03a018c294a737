"""What a merge would do, before it is done: the rows each table would move and which value each
field keeps. Every face (CLI ``--dry-run``, the API's ``?dry_run=true``, the console's preview)
calls :func:`preview_merge`.

The counts come from doing the merge for real, core and plugin hooks included, in a savepoint that
is then rolled back, so the preview cannot drift from the merge itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.services.customers import snapshot

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork

#: fields the target keeps when it has a value, else takes from the source
FILLED_FIELDS = ("email", "phone", "country", "region", "industry")


def field_plan(source: dict[str, Any], target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per field that differs: both values, the value kept, and the rule that chose it."""
    plan: dict[str, dict[str, Any]] = {}
    for f in FILLED_FIELDS:
        s, t = source.get(f), target.get(f)
        if s == t or s is None:
            continue
        kept, rule = (t, "target wins") if t is not None else (s, "filled from source")
        plan[f] = {"source": s, "target": t, "kept": kept, "rule": rule}
    tags = list(dict.fromkeys([*(target.get("tags") or []), *(source.get("tags") or [])]))
    if tags != list(target.get("tags") or []):
        plan["tags"] = {"source": source.get("tags"), "target": target.get("tags"), "kept": tags, "rule": "union"}
    attrs_s, attrs_t = source.get("attributes") or {}, target.get("attributes") or {}
    for key in sorted(set(attrs_s) - set(attrs_t)):
        plan[f"attributes.{key}"] = {"source": attrs_s[key], "target": None, "kept": attrs_s[key],
                                     "rule": "filled from source"}
    for key in sorted(k for k in set(attrs_s) & set(attrs_t) if attrs_s[k] != attrs_t[k]):
        plan[f"attributes.{key}"] = {"source": attrs_s[key], "target": attrs_t[key], "kept": attrs_t[key],
                                     "rule": "target wins"}
    return plan


def preview_merge(uow: UnitOfWork, source_key: int | str, target_key: int | str) -> dict[str, Any]:
    """``{"source", "target", "moved": {table: rows}, "fields": field_plan}``; nothing is kept.

    The merge runs for real inside a savepoint that is then rolled back (with any after-commit
    callbacks it registered), so the same permissions, visibility, guards and refusals apply: a
    refusal raises, as the merge would.
    """
    source, target = uow.customers.resolve(source_key), uow.customers.resolve(target_key)
    plan: dict[str, Any] = {"source": source.id, "target": target.id,
                            "fields": field_plan(snapshot(source), snapshot(target))}
    callbacks = list(uow._after_commit)
    savepoint = uow.session.begin_nested()
    try:
        plan["moved"] = uow.customers.merge(source.id, target.id)
    finally:
        savepoint.rollback()
        uow._after_commit[:] = callbacks
        uow.session.expire_all()
    return plan
