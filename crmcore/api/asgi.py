"""``uvicorn crmcore.api.asgi:app``: the app for several workers (``crm serve --workers N``).

Each worker process opens the CRM named by ``CRM_DATABASE_URL`` (or crm.toml) itself.
"""
from crmcore.api import create_app
from crmcore.app import CRM
from crmcore.console import with_console

_crm = CRM.open()
app = with_console(create_app(_crm), _crm)  # the web console at /console, beside the API
