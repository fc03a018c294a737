"""A plugin whose import fails."""
raise ImportError("crm_broken needs a library that is not installed")
