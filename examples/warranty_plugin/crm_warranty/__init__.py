"""Warranty claims: the example plugin of docs/plugin-guide.md ("A whole plugin in under 60 lines of glue")."""
