"""Every `Store` method, written once; a backend only says how a transaction runs.

`SQLiteStore` and `PostgresStore` subclass `SQLStore` and supply `_write` (run a transaction
generator to its commit) and `_read` (run one outside the write path), plus their lifecycle.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar, TypeVar

from storage import (
    auto,
    canned,
    export,
    ingest,
    kpi,
    leases,
    links,
    outbox_rows,
    ownership,
    people,
    privacy,
    reads,
    surveys,
    targets,
    teams,
)
from storage import transactions as tx
from storage.base import (
    Assignment,
    AuditEntry,
    AutoFacts,
    CustomerCard,
    Erasure,
    HistoryEntry,
    How,
    LinkResult,
    MediaFile,
    Moved,
    OutboxResult,
    PersonFound,
    Preview,
    QueueEntry,
    Retention,
    SaveOutcome,
    SchemaOutdated,
    SchemaTooNew,
    StoredReply,
    Survey,
    Tagged,
)
from storage.dialect import Dialect, migrations
from storage.query import Tx, TxFactory
from vocab.events import Event
from vocab.models import (
    AgentEdit,
    AgentReply,
    Change,
    Conversation,
    ConversationId,
    ConversationStatus,
    CustomerId,
    DeliveryState,
    Identity,
    IdentityId,
    InboundMessage,
    IngestResult,
    Link,
    Message,
    MessageId,
    OutboxId,
    OutboxItem,
)
from vocab.targets import Active, Owed, Target, TargetChange, TargetStart

T = TypeVar("T")


async def stop_writer(queue: asyncio.Queue[Any], task: asyncio.Task[None]) -> None:
    """A group-commit writer stops: what was queued is committed first, then its task ends."""
    await queue.join()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


class SQLStore(ABC):
    dialect: ClassVar[Dialect]

    @property
    @abstractmethod
    def where(self) -> str:
        """The database, for messages: a file path, or a server, database and schema."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _write(self, make: TxFactory[T], *, together: bool = False,
                     leases: bool = False) -> T:
        """Run `make()` in a transaction and return its result once it is committed.
        `together`: its statements may be sent with those of other transactions of the same
        commit (PostgreSQL's lockstep; it claims what it must not share, `query.claim`).
        `leases`: it only takes or hands over leases (PostgreSQL commits those apart)."""

    @abstractmethod
    async def _read(self, make: TxFactory[T]) -> T:
        """Run `make()`, which only reads, outside the write path."""

    # -- schema ------------------------------------------------------------------------------
    async def schema_version(self) -> int:
        return await self._read(lambda: reads.schema_version(self.dialect))

    async def migrate(self) -> list[int]:
        known = migrations()
        return await self._write(lambda: reads.migrate(self.dialect, known, self.where))

    async def check_schema(self) -> None:
        latest = migrations()[-1].version
        current = await self.schema_version()
        if current > latest:
            raise SchemaTooNew(f"database {self.where} has schema version {current}, but this "
                               f"bridge only knows up to {latest}; upgrade the bridge")
        if current < latest:
            raise SchemaOutdated(f"database {self.where} is at schema version {current}; "
                                 f"run `bridge migrate` to reach {latest}")

    # -- writes ------------------------------------------------------------------------------
    async def ingest_inbound(
        self, items: Sequence[InboundMessage], slack_channel: str, now: float,
        reopen_within: float = 0.0,
    ) -> list[IngestResult]:
        return await self._write(
            lambda: ingest.ingest_inbound_many(items, slack_channel, now, reopen_within),
            together=True)

    async def ingest_agent_edit(self, edit: AgentEdit, now: float) -> IngestResult:
        return await self._write(lambda: tx.ingest_agent_edit(edit, now))

    async def set_status(self, conversation_id: ConversationId, status: ConversationStatus,
                         actor: str, now: float, until: float | None = None,
                         request: str | None = None) -> IngestResult:
        return await self._write(lambda: tx.set_status(conversation_id, status, actor, now,
                                                       until, request))

    async def assign(self, conversation_id: ConversationId, user: str | None, actor: str,
                     how: How, now: float) -> Assignment:
        return await self._write(lambda: ownership.assign(conversation_id, user, actor, how,
                                                          now))

    async def wake_snoozed(self, now: float) -> list[OutboxItem]:
        return await self._write(lambda: ownership.wake_snoozed(now))

    async def changes(self, conversation_id: ConversationId) -> list[Change]:
        return await self._read(lambda: ownership.changes(conversation_id))

    async def put_media(self, token: str, filename: str, mime_type: str, data: bytes,
                        now: float, expires_at: float,
                        conversation_id: int | None = None) -> None:
        await self._write(lambda: tx.put_media(token, filename, mime_type, data, now,
                                               expires_at, conversation_id))

    async def ingest_agent_reply(self, reply: AgentReply, now: float) -> IngestResult:
        return await self._write(lambda: tx.ingest_agent_reply(reply, now))

    async def finish_outbox(self, results: Sequence[OutboxResult], now: float) -> list[OutboxItem]:
        return await self._write(lambda: tx.finish_outbox_many(results, now), together=True)

    async def mark_attempted(self, item_id: OutboxId, now: float) -> None:
        await self._write(lambda: outbox_rows.mark_attempted(item_id, now))

    async def retry_outbox(
        self, ids: Sequence[int], all_failed: bool, now: float
    ) -> list[OutboxId]:
        return await self._write(lambda: tx.retry_outbox(ids, all_failed, now))

    async def record_receipt(self, connector: str, platform_id: str, state: DeliveryState,
                             error: str | None, now: float,
                             templates: Sequence[str] = ()) -> list[OutboxItem]:
        return await self._write(lambda: tx.record_receipt(connector, platform_id, state, error,
                                                           now, templates))

    async def set_state(self, connector: str, key: str, value: str, now: float) -> None:
        await self._write(lambda: tx.set_state(connector, key, value, now))

    async def prune_state(self, connector: str, prefix: str, before: float) -> int:
        return await self._write(lambda: tx.prune_state(connector, prefix, before))

    async def set_opted_out(self, identity_id: IdentityId, opted_out: bool, now: float) -> bool:
        return await self._write(lambda: tx.set_opted_out(identity_id, opted_out, now))

    # -- one customer across channels ------------------------------------------------------
    async def issue_handoff(self, reply: AgentReply, invite: str, code_hash: str, channel: str,
                            expires_at: float, now: float) -> IngestResult:
        return await self._write(lambda: tx.issue_handoff(reply, invite, code_hash, channel,
                                                          expires_at, now))

    async def link_customers(self, conversation_id: ConversationId, other: CustomerId,
                             actor: str, evidence: str, now: float) -> LinkResult:
        return await self._write(lambda: links.agent_link(conversation_id, other, actor,
                                                          evidence, now))

    async def undo_link(self, conversation_id: ConversationId, link_id: int | None, actor: str,
                        now: float, request: str | None = None) -> LinkResult:
        return await self._write(lambda: links.agent_unlink(conversation_id, link_id, actor,
                                                            now, request))

    async def customer_card(self, customer_id: CustomerId) -> CustomerCard | None:
        found = await self._read(lambda: people.cards([customer_id]))
        return found[0] if found else None

    async def identity_count(self, customer_id: CustomerId) -> int:
        return await self._read(lambda: people.identity_count(customer_id))

    async def find_customers(self, query: str, phone: str | None, exclude: CustomerId,
                             limit: int) -> list[CustomerCard]:
        return await self._read(lambda: people.find_customers(query, phone, exclude, limit))

    async def history(self, customer_id: CustomerId, exclude: ConversationId,
                      limit: int) -> list[HistoryEntry]:
        return await self._read(lambda: people.history(customer_id, exclude, limit))

    async def links(self, customer_id: CustomerId) -> list[Link]:
        return await self._read(lambda: people.links(customer_id))

    # -- reads -------------------------------------------------------------------------------
    async def pending_outbox(self, limit: int, updated_since: float = 0.0) -> list[OutboxItem]:
        return await self._read(lambda: reads.pending_outbox(limit, updated_since))

    async def list_outbox(self, statuses: Sequence[str]) -> list[OutboxItem]:
        return await self._read(lambda: reads.list_outbox(statuses))

    async def get_outbox(self, ids: Sequence[int]) -> list[OutboxItem]:
        return await self._read(lambda: reads.get_outbox(ids))

    async def get_conversation(self, conversation_id: ConversationId) -> Conversation | None:
        return await self._read(lambda: reads.get_conversation(conversation_id))

    async def conversation_by_thread(self, channel: str, thread_ts: str) -> Conversation | None:
        return await self._read(lambda: reads.conversation_by_thread(channel, thread_ts))

    async def get_message(self, message_id: MessageId) -> Message | None:
        return await self._read(lambda: reads.get_message(message_id))

    async def messages(self, conversation_id: ConversationId) -> list[Message]:
        return await self._read(lambda: reads.messages(conversation_id))

    async def message_by_slack_ts(self, channel: str, ts: str) -> Message | None:
        return await self._read(lambda: reads.message_by_slack_ts(channel, ts))

    async def first_message(self, conversation_id: ConversationId) -> Message | None:
        return await self._read(lambda: reads.first_message(conversation_id))

    async def get_identity(self, identity_id: IdentityId) -> Identity | None:
        return await self._read(lambda: reads.get_identity(identity_id))

    async def get_media(self, token: str, now: float) -> MediaFile | None:
        return await self._read(lambda: reads.get_media(token, now))

    async def get_state(self, connector: str, key: str) -> str | None:
        return await self._read(lambda: reads.get_state(connector, key))

    # -- leases (several instances on one database) -----------------------------------------
    shared: ClassVar[bool] = False  # True where several bridge instances may share the data

    async def acquire_lanes(self, owner: str, lanes: Sequence[str], until: float,
                            now: float) -> list[str]:
        return await self._write(lambda: leases.take_many(leases.LANE, lanes, owner, until,
                                                          now), together=True, leases=True)

    async def claim_lanes(self, owner: str, until: float, now: float, limit: int) -> list[str]:
        return await self._write(lambda: leases.claim_lanes(owner, until, now, limit),
                                 leases=True)

    async def release_lanes(self, owner: str, lanes: Sequence[str]) -> None:
        await self._write(lambda: leases.release(leases.LANE, lanes, owner), together=True,
                          leases=True)

    async def pending_in_lanes(self, lanes: Sequence[str]) -> list[OutboxItem]:
        return await self._read(lambda: leases.pending_in_lanes(lanes))

    async def watch_lanes(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(lanes)` when another instance commits outbox rows into lanes (a
        shared database); nothing to watch where this process is the only one."""
        return None

    async def hold_singleton(self, name: str, owner: str, until: float, now: float) -> bool:
        return await self._write(lambda: leases.take(leases.SINGLETON, name, owner, until, now),
                                 leases=True)

    async def release_singleton(self, name: str, owner: str) -> None:
        await self._write(lambda: leases.release(leases.SINGLETON, [name], owner), leases=True)

    # -- teams (issue 19): added methods only -------------------------------------------------
    async def tag(self, conversation_id: ConversationId, word: str, add: bool,
                  now: float) -> Tagged:
        return await self._write(lambda: teams.tag(conversation_id, word, add, now))

    async def customer_tags(self, connector: str, address: str) -> frozenset[str]:
        return await self._read(lambda: teams.customer_tags(connector, address))

    async def move(self, conversation_id: ConversationId, channel: str, team: str,
                   from_team: str, members: Collection[str] | None, actor: str,
                   now: float) -> Moved:
        return await self._write(lambda: teams.move(conversation_id, channel, team, from_team,
                                                    members, actor, now))

    async def moved_thread(self, channel: str, thread_ts: str) -> ConversationId | None:
        return await self._read(lambda: teams.moved_thread(channel, thread_ts))

    async def queue(self) -> list[QueueEntry]:
        return await self._read(teams.queue)

    async def first_request(self, request_id: str, now: float) -> bool:
        seen = await self._write(lambda: outbox_rows.seen_slack_event(request_id, now))
        return not seen

    # -- canned replies (issue 22): added methods only ----------------------------------------
    async def save_canned(self, scope: str, name: str, title: str, body: str, owner: str,
                          now: float) -> SaveOutcome:
        return await self._write(lambda: canned.save(scope, name, title, body, owner, now))

    async def delete_canned(self, scopes: Sequence[str], name: str, owner: str) -> str | None:
        return await self._write(lambda: canned.delete(scopes, name, owner))

    async def canned_replies(self, scopes: Collection[str]) -> list[StoredReply]:
        return await self._read(lambda: canned.replies(scopes))

    async def set_customer_field(self, customer_id: CustomerId, name: str, value: str,
                                 set_by: str, now: float) -> None:
        await self._write(lambda: canned.set_field(customer_id, name, value, set_by, now))

    async def customer_fields(self, customer_id: CustomerId) -> dict[str, str]:
        return await self._read(lambda: canned.fields(customer_id))

    async def put_preview(self, preview: Preview, now: float) -> None:
        await self._write(lambda: canned.put_preview(preview, now))

    async def claim_preview(self, token: str, user: str, text: str | None,
                            now: float) -> Preview | None:
        return await self._write(lambda: canned.claim_preview(token, user, text, now))

    async def finish_preview(self, token: str, state: str, post_ts: str | None,
                             now: float) -> None:
        await self._write(lambda: canned.finish_preview(token, state, post_ts, now))

    async def get_preview(self, token: str) -> Preview | None:
        return await self._read(lambda: canned.get_preview(token))
    # -- surveys (issue 23) -----------------------------------------------------------------
    async def open_survey(self, conversation_id: ConversationId, kind: str, team: str,
                          scale: str, token: str, question: str, author: str,
                          now: float) -> OutboxItem | None:
        return await self._write(lambda: surveys.open_survey(
            conversation_id, kind, team, scale, token, question, author, now))

    async def survey_follow_up(self, survey: Survey, question: str, author: str,
                               payload: str, now: float) -> OutboxItem:
        return await self._write(lambda: surveys.queue_follow_up(survey, question, author,
                                                                 payload, now))

    async def survey_by_token(self, token: str) -> Survey | None:
        return await self._read(lambda: surveys.by_token(token))

    async def surveys_of(self, conversation_id: ConversationId) -> list[Survey]:
        return await self._read(lambda: surveys.of_conversation(conversation_id))

    async def awaiting_survey(self, connector: str, address: str, now: float) -> Survey | None:
        return await self._read(lambda: surveys.awaiting(connector, address, now))

    async def survey_inbound(self, connector: str, address: str, seen: str, now: float,
                             since: float) -> tuple[bool, Survey | None, Survey | None]:
        return await self._read(lambda: surveys.inbound(connector, address, seen, now, since))

    async def survey_key(self, value: str, now: float) -> str:
        return await self._write(lambda: surveys.shared_key(value, now))

    async def last_nps(self, customer_id: CustomerId) -> float | None:
        return await self._read(lambda: surveys.last_nps(customer_id))

    async def mark_survey(self, survey_id: int, state: str, reason: str | None, now: float,
                          expires_at: float | None = None) -> bool:
        return await self._write(lambda: surveys.mark(survey_id, state, reason, now,
                                                      expires_at))

    async def answer_survey(self, survey_id: int, score: int, comment: str | None,
                            ask_comment: bool, notices: tuple[str, ...],
                            now: float, seen: str | None = None) -> list[OutboxItem] | None:
        return await self._write(lambda: surveys.answer(survey_id, score, comment,
                                                        ask_comment, notices, now, seen))

    async def comment_survey(self, survey_id: int, comment: str, notices: tuple[str, ...],
                             now: float, seen: str | None = None) -> list[OutboxItem] | None:
        return await self._write(lambda: surveys.add_comment(survey_id, comment, notices,
                                                             now, seen))
    # -- the KPIs (issue 24) -------------------------------------------------------------------
    async def _read_aside(self, make: TxFactory[T]) -> T:
        """A long read (the KPIs): where a backend can, off the connection writes use."""
        return await self._read(make)

    async def kpis(self, query: kpi.KpiQuery,
                   hours: kpi.BusinessHours | None = None) -> kpi.KpiReport:
        return await self._read_aside(lambda: kpi.kpis(query, hours))

    async def claim_digest(self, key: str, take: bool, now: float) -> bool:
        return await self._write(lambda: kpi.claim_digest(key, take, now))

    # -- automatic answers (issue 21) ---------------------------------------------------------
    async def auto_facts(self, conversation_id: ConversationId,
                         message_id: MessageId) -> AutoFacts:
        return await self._read(lambda: auto.auto_facts(conversation_id, message_id))

    async def recent_waits(self, slack_channel: str | None) -> tuple[tuple[float, float], ...]:
        return await self._read(lambda: auto.recent_waits(slack_channel))

    async def send_auto(self, conversation_id: ConversationId, kind: str, period: str,
                        text: str, origin: str, event: Event, now: float,
                        score: float | None = None, payload: str = "") -> list[OutboxItem]:
        return await self._write(lambda: auto.send_auto(conversation_id, kind, period, text,
                                                        origin, event, now, score, payload))

    async def person_requested(self, conversation_id: ConversationId, event: Event,
                               now: float) -> list[OutboxItem]:
        return await self._write(lambda: auto.person_requested(conversation_id, event, now))
    # -- customers' data (issue 28) -------------------------------------------------------------
    async def find_people(self, query: str, limit: int = 50) -> list[PersonFound]:
        return await self._read(lambda: export.find_people(query, limit))

    async def export_customer(self, customer_id: int, actor: str,
                              now: float) -> dict[str, Any] | None:
        """Everything held about the customer (None: unknown id); the export is audited."""
        found = await self._read(lambda: export.export_customer(customer_id))
        if found is not None:
            await self._write(lambda: privacy.audit(actor, "export", customer_id, now))
        return found

    async def media_data(self, tokens: list[str]) -> list[tuple[str, bytes]]:
        return await self._read(lambda: export.file_data(tokens))

    async def erase_customer(self, customer_id: int, actor: str,
                             now: float) -> Erasure:
        return await self._write(lambda: privacy.erase_customer(customer_id, actor, now))

    async def retention(self, now: float, messages_before: float | None,
                        media_before: float | None, actor: str,
                        interval: float) -> Retention:
        return await self._write(lambda: privacy.retention(now, messages_before, media_before,
                                                           actor, interval))

    async def audit_entries(self, since: float, limit: int = 10_000) -> list[AuditEntry]:
        return await self._read(lambda: privacy.audit_entries(since, limit))
    async def owed_targets(self, updated_since: float = 0.0) -> list[Owed]:
        return await self._read(lambda: targets.owed(updated_since))

    async def active_targets(self) -> list[Active]:
        return await self._read(targets.active)

    async def start_target(self, plan: TargetStart, now: float) -> list[OutboxItem]:
        return await self._write(lambda: targets.start(plan, now))

    async def change_target(self, move: TargetChange, now: float,
                            events: Sequence[Event] = ()) -> list[OutboxItem]:
        return await self._write(lambda: targets.change(move, now, tuple(events)))

    async def shown_target(self, conversation_id: ConversationId) -> Target | None:
        return await self._read(lambda: targets.shown(conversation_id))

    async def parent_extras(self, conversation_id: ConversationId
                            ) -> tuple[list[Survey], Target | None]:
        def both() -> Tx[tuple[list[Survey], Target | None]]:
            found = yield from surveys.of_conversation(conversation_id)
            shown = yield from targets.shown(conversation_id)
            return found, shown
        return await self._read(both)

    async def targets(self, conversation_id: ConversationId) -> list[Target]:
        return await self._read(lambda: targets.of_conversation(conversation_id))
