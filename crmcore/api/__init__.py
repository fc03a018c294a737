"""The HTTP API for integrators: ``crm serve`` runs :func:`create_app` on uvicorn.

One request is one unit of work over the same services the CLI uses, so every rule (permissions,
guards such as a credit hold, optimistic locking, audit) holds the same way over HTTP.
"""
from crmcore.api.app import create_app

__all__ = ["create_app"]
