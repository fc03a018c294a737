"""Test plugin that publishes hooks of its own (``publisher_*``) for other plugins to implement."""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl


@hookimpl
def crm_add_hookspecs(register: Any) -> None:
    from crm_publisher import hookspecs

    register(hookspecs)


def close_deal(uow: Any, deal: str) -> list[Any]:
    """What the publisher's service does: ask the guard, then go on."""
    return uow.hooks.call("publisher_before_deal", uow=uow, deal=deal)
