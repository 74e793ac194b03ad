"""Every table of the store, classified once: does it hold personal data, and if so what an
erasure and the retention job do to it.  `tests/test_privacy_tables.py` fails when a table
(in `storage/copy.py` TABLES or created by a migration) is missing here.

PERSONAL: rows that hold or point at what a customer wrote or who they are (names,
addresses, phone numbers, text, files); `storage/privacy.py` erases each of them.
NOT_PERSONAL: ids, times, counts, agents' actions and platform bookkeeping only.
"""

from __future__ import annotations

PERSONAL: dict[str, str] = {
    "customers": "display name and tags blanked, erased_at set (the id stays for the KPIs)",
    "identities": "address becomes erased:<id>, name and username removed",
    "identity_claims": "deleted (the phone numbers a platform proved)",
    "conversations": "address becomes erased (times, status and Slack thread ids stay)",
    "messages": "text, markup, attachments and the customer's name removed (times stay)",
    "links": "evidence removed, including 'never link again' rows with the number",
    "handoff_codes": "deleted",
    "outbox": "payloads blanked; rows not yet delivered are blocked",
    "connector_state": "deleted where a key ends with :<address> or a value is the address"
                       " (email threading maps, Messenger's cached names)",
    "media": "deleted (files of the customer's conversations)",
    "customer_fields": "deleted",
    "canned_previews": "deleted (canned replies as filled for the customer), also by retention",
    "surveys": "free-text comment removed (the score stays for the KPIs)",
}
NOT_PERSONAL: dict[str, str] = {
    "conversation_changes": "status and assignee changes by agents: ids and times",
    "moved_threads": "Slack thread ids of moved conversations",
    "sent_ids": "platform message ids of what was sent",
    "receipts": "delivery receipts: platform ids, states, error codes",
    "slack_events": "ids of Slack events already handled",
    "leases": "which instance works what",
    "response_targets": "response-time targets: times and states (KPIs)",
    "audit_log": "who did what to which customer id, never what the data was",
    "privacy_jobs": "when the retention job last ran",
    "canned_replies": "agents' reply templates and which agent saved them",
    "auto_answers": "which automatic answer a conversation got: ids, kinds, periods, scores",
}


def classified() -> frozenset[str]:
    return frozenset(PERSONAL) | frozenset(NOT_PERSONAL)
