"""``uvicorn crmcore.api.asgi:app``: the app for several workers (``crm serve --workers N``).

Each worker process opens the CRM named by ``CRM_DATABASE_URL`` (or crm.toml) itself.
"""
from crmcore.api import create_app
from crmcore.app import CRM

app = create_app(CRM.open())
