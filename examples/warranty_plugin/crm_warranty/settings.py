"""``[warranty]`` in crm.toml: where the standard layout keeps a plugin's settings."""
from __future__ import annotations

from crmcore.sdk import PluginSettings


class WarrantySettings(PluginSettings):
    max_claim_days: int = 730  # a claim for a sale older than this is refused
