"""``crm sales …``: leads, opportunities, pipelines (with a board view), activities, forecasts, reports.

Every read command takes ``--json``. Bad input is one ``error:`` line with exit code 1
(usage mistakes that click catches, such as an unknown --by value, exit 2).
"""
from __future__ import annotations

import click

from crm_sales_automation.cli.deals import opp, pipeline
from crm_sales_automation.cli.leads import lead
from crm_sales_automation.cli.process import (  # noqa: F401 - on `report`
    report_follow_up,
    report_objections,
    report_reasons,
    report_sources,
)
from crm_sales_automation.cli.referrals import referral
from crm_sales_automation.cli.reports import forecast_cmd, report
from crm_sales_automation.cli.work import activity, demo_cmd, handover_cmd, quota
from crmcore.sdk import CRMGroup


@click.group(cls=CRMGroup)
def sales() -> None:
    """Sales: leads, opportunities, pipelines, activities, forecasts and reports."""


for _command in (lead, referral, opp, pipeline, activity, forecast_cmd, report, quota, handover_cmd, demo_cmd):
    sales.add_command(_command)

__all__ = ["sales"]
