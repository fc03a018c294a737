"""The plugin's service layer: leads, conversion, pipelines, deals, objections, activities, quotas.

Every function takes the caller's unit of work, flushes and never commits, checks its
``sales.*`` permission before writing anything, and raises crmcore errors (InvalidInput,
NotFound, Conflict) that the CLI shows as one line. Writes to a deal lock its row first
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's writing units of work hold the database's
write lock from their first statement), so two people moving or winning the same deal at once
are serialised and the second one sees the first one's result.

One module per entity (the seams of the old single module); this package re-exports their
public names so callers keep writing ``services.move(...)``.
"""
from __future__ import annotations

from crm_sales_automation.services._common import (
    DEFAULT_PIPELINE,
    DEFAULT_STAGES,
    INVOICE_PREFIX,
    LOST,
    WON,
    activity_rows,
    settings_for,
    today,
)
from crm_sales_automation.services.activities import (
    add_activity,
    complete_activity,
    due_activities,
    handover,
    list_quotas,
    set_quota,
)
from crm_sales_automation.services.conversion import (
    ConversionResult,
    Match,
    convert,
    find_matches,
    normalise_name,
)
from crm_sales_automation.services.customers import (
    merge_customer_rows,
    profile_section,
    timeline,
)
from crm_sales_automation.services.leads import (
    add_lead,
    assess,
    get_lead,
    lead_by_email,
    lead_detail,
    lead_row,
    learn_lead_scores,
    list_leads,
    set_lead_status,
    update_lead,
)
from crm_sales_automation.services.opportunities import (
    add_objection,
    add_opportunity,
    effective_probability,
    get_opportunity,
    invoice,
    list_opportunities,
    lose,
    move,
    opportunity_detail,
    opportunity_rows,
    resolve_objection,
    uninvoiced_won,
    update_opportunity,
    win,
)
from crm_sales_automation.services.pipelines import (
    board,
    create_pipeline,
    ensure_default_pipeline,
    get_pipeline,
    list_pipelines,
    stage_named,
    stages_of,
)
from crm_sales_automation.services.referrals import (
    any_referral,
    check_referrer,
    referral_counts,
    referral_detail,
    set_referral,
)
from crm_sales_automation.services.reopening import REOPEN, reopen, reopen_permission
from crmcore.db.types import utcnow

__all__ = [
    "DEFAULT_PIPELINE",
    "DEFAULT_STAGES",
    "INVOICE_PREFIX",
    "LOST",
    "REOPEN",
    "WON",
    "ConversionResult",
    "Match",
    "activity_rows",
    "add_activity",
    "add_lead",
    "add_objection",
    "add_opportunity",
    "any_referral",
    "assess",
    "board",
    "check_referrer",
    "complete_activity",
    "convert",
    "create_pipeline",
    "due_activities",
    "effective_probability",
    "ensure_default_pipeline",
    "find_matches",
    "get_lead",
    "get_opportunity",
    "get_pipeline",
    "handover",
    "invoice",
    "lead_by_email",
    "lead_detail",
    "lead_row",
    "learn_lead_scores",
    "list_leads",
    "list_opportunities",
    "list_pipelines",
    "list_quotas",
    "lose",
    "merge_customer_rows",
    "move",
    "normalise_name",
    "opportunity_detail",
    "opportunity_rows",
    "profile_section",
    "referral_counts",
    "referral_detail",
    "reopen",
    "reopen_permission",
    "resolve_objection",
    "set_lead_status",
    "set_quota",
    "set_referral",
    "settings_for",
    "stage_named",
    "stages_of",
    "timeline",
    "today",
    "uninvoiced_won",
    "update_lead",
    "update_opportunity",
    "utcnow",
    "win",
]
