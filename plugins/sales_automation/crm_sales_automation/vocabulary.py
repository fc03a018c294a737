"""The sales plugin's vocabularies, configurable in crm.toml ``[vocabularies]``.

``lead_sources`` (defaults: the sources the plugin always had), ``lost_reasons`` and
``won_reasons`` (why deals end the way they do, for the won/lost report), ``objection_methods`` (how
an objection was handled, for the objections report). Declared when the plugin is imported, so the
core validates crm.toml against them when the CRM opens.
"""
from __future__ import annotations

from crm_sales_automation.enums import LeadSource
from crmcore.sdk import Vocabularies, declare_vocabulary, vocabularies_of
from crmcore.uow import UnitOfWork

PLUGIN_ID = "sales_automation"  # crm_sales_automation.schemas.PLUGIN_ID, not imported: it loads pydantic-settings at start-up

LEAD_SOURCES = declare_vocabulary("lead_sources", [s.value for s in LeadSource], "Where a lead came from",
                                  owner=PLUGIN_ID, column=("sales_leads", "source"))
LOST_REASONS = declare_vocabulary(
    "lost_reasons", ["price", "competitor", "no_budget", "no_decision", "timing", "product_fit", "other"],
    "Why a deal was lost", owner=PLUGIN_ID, column=("sales_opportunities", "lost_reason_code"))
WON_REASONS = declare_vocabulary(
    "won_reasons", ["price", "quality", "relationship", "service", "product_fit", "delivery", "other"],
    "Why a deal was won", owner=PLUGIN_ID, column=("sales_opportunities", "won_reason"))
#: the classic objection-handling techniques of sales training, one word each
OBJECTION_METHODS = declare_vocabulary(
    "objection_methods", ["acknowledge_clarify", "compare_value", "provide_evidence", "trial_offer",
                          "reference_customer", "price_concession", "defer", "other"],
    "How an objection was handled", owner=PLUGIN_ID, column=("sales_objections", "method"))


def words(uow: UnitOfWork) -> Vocabularies:
    """The vocabularies in force for the unit of work's CRM (validated once per CRM)."""
    return vocabularies_of(uow.crm)
