"""Test helpers of the service plugin (and for anyone testing against it): a frozen clock."""
from __future__ import annotations

import datetime as dt


class FrozenClock:
    """``crm.clock``: the time every ``uow.now()`` sees; move it with ``set`` / ``advance``."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def set(self, at: dt.datetime) -> None:
        self.at = at

    def advance(self, **kw: float) -> None:
        self.at += dt.timedelta(**kw)
