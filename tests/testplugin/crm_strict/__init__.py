"""Test plugin that implements a published hook without marking it optional: it needs the publisher."""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl

requires = ("publisher",)


@hookimpl
def publisher_extra(customer_id: int) -> int:
    return 1
