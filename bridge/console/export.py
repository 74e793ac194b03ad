"""The *Export customer data* message shortcut (issue 28): on any message of a customer's
thread, an admin (`[privacy] admins`) gets the customer's export, the same JSON document as
`bridge customer export`, as a file in a direct message from the app.  Anyone else is told
only that they may not; the export is recorded in the audit log as the admin's."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from bridge.console.payload import where
from bridge.console.slack import SlackConsole
from bridge.privacy import export_bytes
from storage.base import Store

log = logging.getLogger(__name__)
EXPORT_SHORTCUT = "export_customer_data"
Ack = Callable[..., Any]


class ExportShortcut:
    def __init__(self, console: SlackConsole, store: Store, admins: Collection[str],
                 clock: Callable[[], float]) -> None:
        self.console = console
        self.store = store
        self.admins = frozenset(admins)
        self.clock = clock

    def register(self, bolt: Any) -> None:
        bolt.shortcut(EXPORT_SHORTCUT)(self._on_shortcut)

    async def _on_shortcut(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        channel, thread_ts, user = where(body)
        if user not in self.admins:
            await self.console.ephemeral(user, "Only the admins named in `[privacy] admins` can "
                                         "export customer data.", thread_ts)
            return
        conv = await self.store.conversation_by_thread(channel, thread_ts)
        if conv is None:
            moved = await self.store.moved_thread(channel, thread_ts)
            conv = None if moved is None else await self.store.get_conversation(moved)
        if conv is None:
            await self.console.ephemeral(user, "This is not a customer's thread.", thread_ts)
            return
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str) or not await self.store.first_request(
                f"export:{trigger}", self.clock()):
            return  # a replayed (or id-less) shortcut exports nothing a second time
        data = await export_bytes(self.store, conv.customer_id, f"<@{user}>", self.clock(),
                                  with_files=False)
        if data is None:
            return
        client = self.console.client
        try:
            opened = await client.conversations_open(users=user)
            await client.files_upload_v2(
                channel=str(opened["channel"]["id"]), content=data,
                filename=f"customer-{conv.customer_id}.json",
                title=f"Customer {conv.customer_id}: export",
                initial_comment=f"Everything held about customer {conv.customer_id} "
                                "(JSON; schema in the README). It is personal data: keep it "
                                "only as long as the request needs.")
        except Exception as exc:
            log.warning("export of customer %s to %s failed: %r", conv.customer_id, user, exc)
            await self.console.ephemeral(user, "The export could not be sent to you; try "
                                         "`bridge customer export` on the server.", thread_ts)
