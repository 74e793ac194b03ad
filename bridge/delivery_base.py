"""What both sides of delivery share (`bridge/slack_side.py`, `bridge/customer_side.py`): the
result of a finished row, the stored message a row is about, a connector by name, a file's
name; and the one thing the Slack side asks of the customer side (a customer's file)."""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeAlias

from connectors.base import Connector, SendError
from storage.base import OutboxResult, Outcome, Store
from vocab.models import Attachment, Message, OutboxItem, OutboxKind

Handler: TypeAlias = Callable[[OutboxItem], Awaitable[OutboxResult]]
Handlers: TypeAlias = Mapping[OutboxKind, Handler]


class CustomerFiles(Protocol):
    """The customer side, as the Slack side needs it: a customer's file, size-capped."""

    async def fetch_file(self, connector: str, attachment: Attachment) -> bytes: ...


def done(item: OutboxItem, **fields: object) -> OutboxResult:
    return OutboxResult(item_id=item.id, outcome=Outcome.DONE, attempts=item.attempts + 1,
                        **fields)


def file_name(attachment: Attachment) -> str:
    if attachment.filename:
        return attachment.filename
    ext = mimetypes.guess_extension(attachment.mime_type or "") or ".bin"
    return f"{attachment.kind}{'.jpg' if ext == '.jpe' else ext}"


async def stored_message(store: Store, item: OutboxItem) -> Message:
    msg = None if item.message_id is None else await store.get_message(item.message_id)
    if msg is None:
        raise SendError(f"message {item.message_id} is gone", retryable=False)
    return msg


def connector_named(connectors: Mapping[str, Connector], name: str) -> Connector:
    connector = connectors.get(name)
    if connector is None:
        raise SendError(f"the {name} connector is not enabled", code="disabled",
                        retryable=False)
    return connector
