"""Migration branches: the core's and one per plugin, all in the one alembic environment."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORE_LABEL = "core"
CORE_VERSIONS = Path(__file__).parent / "versions"


@dataclass(frozen=True)
class MigrationBranch:
    """A plugin's alembic branch: its ``branch_labels`` label and its versions directory.

    ``table_prefix`` names the tables the plugin owns (``<label>_``), used by ``db check`` and
    ``plugins remove --purge``.
    """

    label: str
    versions: Path

    @property
    def table_prefix(self) -> str:
        return f"{self.label}_"
