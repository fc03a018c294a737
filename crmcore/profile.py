"""Sections of the customer 360° view contributed by plugins."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProfileSection:
    """A titled block of label → value pairs; ``fields`` must be JSON-serialisable for ``--json``."""

    title: str
    fields: dict[str, Any] = field(default_factory=dict)
