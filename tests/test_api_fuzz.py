"""schemathesis fuzzes every operation of /openapi.json: no 500, responses conform to the schema.

Requests are sent as an admin (so permission refusals do not hide the code paths) against a
database with a few customers; the generated ids, bodies and headers are schemathesis's own.
"""
from __future__ import annotations

from typing import Any

import crm_credit.plugin as credit  # the plugins' tables must be on the metadata before the test database is made
import crm_marketing.plugin as marketing
import crm_sales_automation.plugin as sales
import crm_service.plugin as service
import crm_value_analysis.plugin as value
import schemathesis
from hypothesis import HealthCheck, settings

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate

# the service plugin's inbound mail route takes the raw message (RFC 5322) as its body: sent as text
schemathesis.serializer.alias("message/rfc822", "text/plain")


def test_no_server_error_and_schema_conformance(make_crm: Any) -> None:
    """Every operation of the core and of the repository's five plugins, schemathesis's generated
    inputs: no 500, documented statuses, conforming bodies."""
    crm: CRM = make_crm(plugins=[value, sales, credit, marketing, service])
    from hypothesis import given
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        token = TokenService(uow).create("root", "fuzz")[1]
        for i in range(3):
            c = uow.customers.create(CustomerCreate(name=f"Fuzz {i}"))
            uow.accounts.post(c.id, TransactionCreate(kind="invoice", amount="10", reference=f"F-{i}"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(crm), headers={"Authorization": f"Bearer {token}"})
    operations = [r.ok() for r in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert len(operations) >= 40 and {"/credit/scores", "/sales/reports/sources", "/service/surveys/send-nps",
                                      "/value/retention", "/marketing/contacts/{contact}/consent"} <= paths
    for op in operations:
        @settings(max_examples=20, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(op.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     response_schema_conformance])

        run()
