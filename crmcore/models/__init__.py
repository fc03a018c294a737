"""The core's tables. Plugins map their own tables on the same ``Base``."""
from crmcore.models.account import Account, Allocation, Transaction
from crmcore.models.api import ApiToken, IdempotencyRecord, OutboxEvent, WebhookDelivery, WebhookSubscription
from crmcore.models.audit import AuditEntry, PluginState
from crmcore.models.customer import Contact, Customer
from crmcore.models.interaction import Interaction
from crmcore.models.platform import MergeJournal, PluginRecord
from crmcore.models.user import User

__all__ = ["Account", "Allocation", "ApiToken", "AuditEntry", "Contact", "Customer", "IdempotencyRecord", "Interaction", "MergeJournal", "OutboxEvent", "PluginRecord", "PluginState", "Transaction", "User", "WebhookDelivery", "WebhookSubscription"]
