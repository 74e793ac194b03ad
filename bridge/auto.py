"""Automatic answers that know the hours, and an FAQ that hands over to a person (issue 21).

After a customer's message is committed, the router asks `AutoAnswers.after_ingest` what the
bridge says by itself.  Each answer is queued in the store (`storage/auto.py`) as an outbound
message with `origin` 'auto' or 'faq' and delivered by the outbox like an agent's reply, so the
channel's rules apply (opt-out, 24-hour windows, email's `Auto-Submitted: auto-replied`); it is
never counted as an agent's response, and the thread shows it as sent by the bridge.

- closed reply (`[teams.<name>] closed_reply`): when the team's calendar says closed, once per
  conversation per closed period (keyed by the next opening), and not within
  `auto_quiet_minutes` of a person's reply;
- greeting (`[teams.<name>] greeting`): on a conversation's first message, with the expected
  wait when open (the closed reply takes its place when closed and configured);
- FAQ (`[faq]`): see bridge/faq.py; at most one answer per customer message, never twice without
  the customer writing between, never within `[faq] quiet_minutes` of a person's reply, and
  never again in a conversation where the customer asked for a person.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bridge.auto_texts import builtin, choose, duration, language_of, when
from bridge.customer_side import choices_payload
from bridge.faq import PERSON_CHOICE, Faq, FaqSettings, PersonWords
from bridge.outbox import OutboxWorker
from bridge.teams import Routing, Team, TeamSettings
from bridge.templates import TemplateError, render_text
from storage.base import AutoFacts, Store, StoreError
from vocab.events import AutoAnswered, PersonRequested
from vocab.models import (
    Choice,
    Choices,
    Conversation,
    InboundMessage,
    IngestResult,
    OutboxItem,
)

log = logging.getLogger(__name__)


class Hours(Protocol):
    """A team's business-hours calendar (bridge/hours.py's `Calendar`)."""

    zone: ZoneInfo  # the opening times' zone: the next opening is written in it

    def is_open(self, t: float) -> bool: ...

    def next_open(self, t: float) -> float | None: ...

    def business_seconds(self, start: float, end: float) -> float: ...


CalendarOf = Callable[[str], Hours | None]  # a team's name -> its calendar (None: always open)


@dataclass(frozen=True)
class Moment:
    """The team's hours as one message sees them."""

    open: bool
    next_open: float | None
    zone: ZoneInfo | None = None  # the calendar's


class AutoAnswers:
    def __init__(self, store: Store, worker: OutboxWorker, routing: Routing,
                 teams: Mapping[str, TeamSettings], calendar_of: CalendarOf,
                 faq: Faq | None, faq_settings: FaqSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.worker = worker
        self.routing = routing
        self.teams = dict(teams)
        self.calendar_of = calendar_of
        self.faq = faq
        self.faq_settings = faq_settings
        self.person_words = PersonWords(faq_settings.person_words)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.faq is not None or any(
            t.closed_reply is not False or t.greeting is not False for t in self.teams.values())

    def could_answer(self, now: float) -> bool:
        """Whether any answer is possible now, from the configuration and the clock alone:
        the FAQ, a greeting, or a closed reply while that team's calendar says closed.  When
        not, a customer message costs no read at all."""
        if self.faq is not None:
            return True
        for name, table in self.teams.items():
            if table.greeting is not False:
                return True
            if table.closed_reply is not False and not self._moment(name, now).open:
                return True
        return False

    async def after_ingest(self, items: Sequence[InboundMessage],
                           results: Sequence[IngestResult]) -> None:
        """Answer what deserves it; a failure here is logged, never the webhook's failure (the
        customer's message is stored and shown whatever happens)."""
        if not self.could_answer(self.clock()):
            return
        for item, result in zip(items, results, strict=True):
            if (result.duplicate or result.message_id is None or result.conversation_id is None
                    or item.echo_author is not None or item.edit_of is not None
                    or item.opt_out is not None):
                continue
            try:
                self.worker.submit(await self._answer(item, result))
            except (StoreError, TemplateError, OSError) as exc:
                log.warning("automatic answer to message %s not given: %s",
                            result.message_id, exc)

    async def _answer(self, item: InboundMessage, result: IngestResult) -> list[OutboxItem]:
        assert result.conversation_id is not None and result.message_id is not None
        # One read: the conversation, its identity's opt-out and the history facts.
        facts = await self.store.auto_facts(result.conversation_id, result.message_id)
        conv = facts.conversation
        if conv is None:
            return []
        team = self.routing.by_channel(conv.slack_channel) or self.routing.default
        table = self.teams.get(team.name) or TeamSettings()
        if self.faq is None and table.closed_reply is False and table.greeting is False:
            return []  # this team answers by itself in no way
        if facts.opted_out:
            return []  # the channel's rule: nothing goes out, automatic least of all
        now = self.clock()
        language = language_of(item.language, team.language)
        moment = self._moment(team.name, now)
        found: list[dict[str, object]] = []

        async def variables() -> dict[str, object]:
            """The template variables, read (the expected wait) only when a text is rendered."""
            if not found:
                wait = None
                if moment.open:
                    waits = await self.store.recent_waits(conv.slack_channel)
                    wait = self._expected_wait(
                        team.name, facts.model_copy(update={"recent_waits": waits}))
                found.append(self._variables(item, conv, team, language, moment, wait, now))
            return found[0]

        out: list[OutboxItem] = []
        quiet = table.auto_quiet_minutes * 60
        agent_recent = (facts.last_agent_reply_at is not None
                        and now - facts.last_agent_reply_at < quiet)
        closed_text = choose(table.closed_reply, "closed_reply", language)
        if not moment.open and closed_text is not None:
            if not agent_recent:
                text = render_text(closed_text, await variables())
                period = "never" if moment.next_open is None else str(int(moment.next_open))
                out += await self.store.send_auto(
                    conv.id, "closed", period, text, "auto",
                    AutoAnswered(origin="closed", text=text), now)
        elif facts.first_message:
            greeting = choose(table.greeting, "greeting", language)
            if greeting is not None:
                text = render_text(greeting, await variables())
                out += await self.store.send_auto(conv.id, "greeting", "", text, "auto",
                                                  AutoAnswered(origin="greeting", text=text), now)
        out += await self._faq(item, conv, team, facts, language, variables, now,
                               str(result.message_id))
        return out

    async def _faq(self, item: InboundMessage, conv: Conversation, team: Team, facts: AutoFacts,
                   language: str, variables: Callable[[], Awaitable[dict[str, object]]],
                   now: float, period: str) -> list[OutboxItem]:
        if self.faq is None or facts.person_requested:
            return []
        if item.choice == PERSON_CHOICE or self.person_words(item.text):
            mentions = ((facts.assignee,) if facts.assignee
                        else tuple(sorted(team.members)))
            out = await self.store.person_requested(conv.id, PersonRequested(mentions=mentions),
                                                    now)
            if out:
                text = render_text(self._text("person_coming", language), await variables())
                out += await self.store.send_auto(conv.id, "person_coming", "", text, "faq",
                                                  AutoAnswered(origin="handover", text=text), now)
            return out
        if not facts.customer_wrote_since_faq:
            return []
        if facts.last_agent_reply_at is not None and \
                now - facts.last_agent_reply_at < self.faq_settings.quiet_minutes * 60:
            return []
        match = self.faq.best(item.text, self.faq_settings.threshold)
        if match is None:
            return []
        values = await variables()
        answer = render_text(match.answer, values)
        offer = render_text(self._text("faq_offer", language),
                            {**values, "question": match.question, "answer": answer})
        text = f"{answer}\n\n{offer}" if offer else answer
        event = AutoAnswered(origin="faq", text=text, question=match.question, score=match.score)
        button = Choice(id=PERSON_CHOICE, title=self._text("person_button", language))
        return await self.store.send_auto(conv.id, "faq", period, text, "faq", event, now,
                                          match.score, choices_payload(Choices(items=(button,))))

    def _text(self, key: str, language: str) -> str:
        own = self.faq_settings.texts.get(language) or {}
        return own.get(key) or builtin(key, language)

    def _moment(self, team: str, now: float) -> Moment:
        calendar = self.calendar_of(team)
        if calendar is None or calendar.is_open(now):
            return Moment(open=True, next_open=None)
        return Moment(open=False, next_open=calendar.next_open(now), zone=calendar.zone)

    def _expected_wait(self, team: str, facts: AutoFacts) -> float | None:
        """The median open time the team's latest conversations waited for a person."""
        calendar = self.calendar_of(team)
        waits = sorted(calendar.business_seconds(a, b) if calendar is not None else b - a
                       for a, b in facts.recent_waits)
        return waits[len(waits) // 2] if waits else None

    @staticmethod
    def _variables(item: InboundMessage, conv: Conversation, team: Team, language: str,
                   moment: Moment, wait_seconds: float | None,
                   now: float) -> dict[str, object]:
        name = item.sender_name.strip()
        zone = moment.zone or ZoneInfo(team.timezone)
        next_open = "" if moment.next_open is None else when(moment.next_open, zone, language,
                                                             now)
        iso = ("" if moment.next_open is None
               else datetime.fromtimestamp(moment.next_open, zone).isoformat(timespec="minutes"))
        wait = "" if wait_seconds is None else duration(wait_seconds, language)
        return {"customer": {"name": name, "first_name": name.split(" ")[0] if name else ""},
                "team": team.name, "language": language, "open": moment.open,
                "next_open": next_open, "next_open_iso": iso, "wait": wait,
                "question": "", "answer": "", "conversation": int(conv.id)}
