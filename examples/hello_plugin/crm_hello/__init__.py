"""crm_hello: a minimal crmcore plugin (see docs/plugin-guide.md)."""
