"""Satisfaction surveys (issue 23): a CSAT question when an agent closes a conversation, NPS
now and then, and the answers, from a button, a number reply or the survey page.

The question goes through the durable outbox (`customer_survey` rows, delivered here) with
the platform's native buttons where it has them (`OutboundMessage.choices`).  Each choice id
carries the survey's signed token (`s:<token>:<score>`), checked before it is looked up: a
forged id names no survey, a replayed one finds it answered, and nothing changes.  An answer is
never a message of the conversation, so it never reopens it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bridge.csat_settings import CsatOverride, CsatSettings, csat_variables
from bridge.delivery_base import done
from bridge.survey_texts import labels, survey_language, survey_text
from bridge.templates import TemplateError, render_text
from connectors.base import Connector, OptedOut, OutsideWindow, SendError
from storage.base import CannedStore, OutboxResult, Outcome, Store, Survey
from vocab.models import (
    Choice,
    Choices,
    Conversation,
    ConversationId,
    ConversationStatus,
    DeliveryState,
    OutboundMessage,
    OutboxItem,
    OutboxKind,
    SendReceipt,
)
from vocab.mrkdwn import mrkdwn_escape

log = logging.getLogger(__name__)
DAY = 86400.0
COMMENT_WINDOW = 3600.0  # seconds after a low score in which the next text is its comment
EMOJI = ("😞", "🙁", "😐", "🙂", "😄")
LABELS = ("Very bad", "Bad", "OK", "Good", "Excellent")
COMMENT_PREFIX = "comment:"
_NUMBER = re.compile(r"\s*(\d{1,2})\s*(?:/\s*(?:5|10)\s*)?[.!]?\s*")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{16}")
MAX_COMMENT = 2000
SCORE = re.compile(r"[0-9]{1,2}")  # a score as a form or a button sends it (ASCII digits)


def score_range(scale: str) -> range:
    return range(0, 11) if scale == "0-10" else range(1, 6)


def parse_score(text: str, scale: str) -> int | None:
    """A number reply ("4", " 4/5 ", "9!") or, on the emoji scale, one of its faces."""
    found = _NUMBER.fullmatch(text)
    if found is not None:
        value = int(found.group(1))
        return value if value in score_range(scale) else None
    if scale == "emoji" and text.strip() in EMOJI:
        return EMOJI.index(text.strip()) + 1
    return None


def render_score(survey: Survey, score: int) -> str:
    if survey.kind == "nps":
        return f":loudspeaker: NPS {score}/10"
    face = EMOJI[score - 1] + " " if survey.scale == "emoji" else ":star: "
    return f"{face}{score}/5"


class Surveys:
    def __init__(self, store: Store, connectors: Mapping[str, Connector],
                 settings: CsatSettings, teams: Mapping[str, CsatOverride | None],
                 public_url: str, submit: Callable[[Sequence[OutboxItem]], None],
                 clock: Callable[[], float] = time.time,
                 channel_team: Callable[[str | None], str] = lambda channel: "support",
                 language_of_team: Callable[[str], str] = lambda team: "en",
                 fields: CannedStore | None = None) -> None:
        self.store = store
        self.connectors = connectors
        self.base = settings
        self.teams = teams
        self.public_url = public_url
        self.submit = submit  # hands new outbox rows to the worker
        self.clock = clock
        self.channel_team = channel_team  # a Slack channel's team name
        self.language_of_team = language_of_team  # a team's `language`
        self.fields = fields  # customer fields (the customer's `language`)
        self._key: bytes | None = None

    # -- settings and tokens -----------------------------------------------------------------
    def settings(self, team: str) -> CsatSettings:
        override = self.teams.get(team)
        return self.base if override is None else override.over(self.base)

    def wanted(self) -> bool:
        """Any team asks for surveys (else nothing here runs)."""
        return any(self.settings(team).enabled or self.settings(team).nps
                   for team in {"support", *self.teams})

    async def key(self) -> bytes:
        """The signing key, made once per database (every instance shares it)."""
        if self._key is None:
            value = await self.store.survey_key(secrets.token_urlsafe(32), self.clock())
            self._key = value.encode()
        return self._key

    async def new_token(self) -> str:
        head = secrets.token_urlsafe(12)
        return f"{head}.{await self._sign(head)}"

    async def _sign(self, head: str) -> str:
        mac = hmac.new(await self.key(), head.encode(), hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac).decode()

    async def verified(self, token: str) -> bool:
        """A token this bridge signed (checked before any lookup)."""
        if not _TOKEN.fullmatch(token):
            return False
        head, sig = token.split(".")
        return hmac.compare_digest(sig, await self._sign(head))

    async def language(self, conv: Conversation, team: str) -> str:
        """The customer's language for the built-in texts (`bridge/survey_texts.py`)."""
        fields = {} if self.fields is None else await self.fields.customer_fields(
            conv.customer_id)
        return survey_language(fields, self.language_of_team(team))

    async def survey_language(self, survey: Survey) -> str:
        conv = await self.store.get_conversation(survey.conversation_id)
        return "en" if conv is None else await self.language(conv, survey.team)

    # -- a close schedules the question -------------------------------------------------------
    async def closed(self, conversation_id: ConversationId) -> None:
        """An agent closed the conversation: schedule its survey (CSAT, else NPS when due)."""
        conv = await self.store.get_conversation(conversation_id)
        if conv is None or conv.status is not ConversationStatus.CLOSED:
            return
        team = self.channel_team(conv.slack_channel)
        s = self.settings(team)
        if s.enabled:
            await self._open(conv, "csat", team, s.scale)
        elif s.nps and await self._nps_due(conv, s):
            await self._open(conv, "nps", team, "0-10")

    async def _nps_due(self, conv: Conversation, s: CsatSettings) -> bool:
        last = await self.store.last_nps(conv.customer_id)
        return last is None or self.clock() - last >= s.nps_interval_days * DAY

    async def _open(self, conv: Conversation, kind: str, team: str, scale: str) -> None:
        s = self.settings(team)
        language = await self.language(conv, team)
        question = (survey_text("nps_question", language, s.nps_question) if kind == "nps"
                    else survey_text("question", language, s.question))
        identity = await self.store.get_identity(conv.identity_id)
        variables = csat_variables(identity.display_name if identity else "", s.sender, team)
        try:
            text = render_text(question, variables)
        except TemplateError as exc:
            log.warning("[csat] question of team %s cannot be rendered: %s", team, exc)
            return
        item = await self.store.open_survey(conv.id, kind, team, scale, await self.new_token(),
                                            text, s.sender, self.clock())
        if item is not None:
            self.submit([item])

    # -- the outbox row that sends it ---------------------------------------------------------
    def handlers(self) -> dict[OutboxKind, Callable[[OutboxItem], Awaitable[OutboxResult]]]:
        return {OutboxKind.CUSTOMER_SURVEY: self.deliver}

    def choices(self, survey: Survey, language: str = "en") -> Choices | None:
        if survey.kind == "nps":
            return None  # 11 choices fit no platform's buttons: a number reply
        titles = EMOJI if survey.scale == "emoji" else tuple(str(n) for n in range(1, 6))
        names = labels(language)
        return Choices(
            items=tuple(Choice(id=f"s:{survey.token}:{n}", title=titles[n - 1],
                               description=names[n - 1]) for n in range(1, 6)),
            button=survey_text("button", language),
            fallback=survey_text("number_hint", language))

    def survey_url(self, survey: Survey) -> str:
        return f"{self.public_url}/survey/{survey.token}"

    async def deliver(self, item: OutboxItem) -> OutboxResult:
        comment = item.payload.startswith(COMMENT_PREFIX)
        survey = await self.store.survey_by_token(item.payload.removeprefix(COMMENT_PREFIX))
        conv = await self.store.get_conversation(item.conversation_id)
        msg = None if item.message_id is None else await self.store.get_message(item.message_id)
        if survey is None or conv is None or msg is None:
            return done(item)
        if not comment:
            if survey.state != "scheduled":
                return done(item)  # handled before (a retry after a crash)
            if conv.status is not ConversationStatus.CLOSED:
                await self.store.mark_survey(survey.id, "cancelled", "reopened", self.clock())
                return self._stopped(item, survey, "reopened before it went out",
                                     ":leftwards_arrow_with_hook: The satisfaction survey was "
                                     "not sent: the conversation was reopened first.")
        identity = await self.store.get_identity(conv.identity_id)
        s = self.settings(survey.team)
        language = await self.language(conv, survey.team)
        if identity is not None and identity.opted_out_at is not None:
            return await self._blocked(item, survey, comment, "the customer opted out")
        out = OutboundMessage(
            message_id=msg.id, conversation_id=conv.id, address=conv.address, text=msg.text,
            author_name=s.sender, automatic=True,
            last_inbound_at=None if identity is None else identity.last_inbound_at,
            choices=None if comment else self.choices(survey, language))
        connector = self.connectors.get(conv.connector)
        if connector is None:
            raise SendError(f"the {conv.connector} connector is not enabled", code="disabled",
                            retryable=False)
        try:
            receipt = await self._send(connector, out, survey, s, comment, language)
        except (OutsideWindow, OptedOut) as exc:
            return await self._blocked(item, survey, comment, exc.describe())
        if not comment:
            await self.store.mark_survey(survey.id, "sent", None, self.clock(),
                                         self.clock() + s.answer_days * DAY)
        what = "comment request" if comment else (
            "NPS question" if survey.kind == "nps" else "satisfaction survey")
        return done(item, message_id=msg.id, message_state=DeliveryState.SENT,
                    sent_platform_ids=receipt.platform_message_ids, author_name=s.sender,
                    conversation_id=conv.id,
                    notice=f":clipboard: The {what} was sent to the customer.")

    async def _send(self, connector: Connector, out: OutboundMessage, survey: Survey,
                    s: CsatSettings, comment: bool, language: str) -> SendReceipt:
        if comment:
            return await connector.send(out)
        if connector.name == "email":
            # Mail has no buttons: a link to the one-page survey (a number reply works too).
            link = f"{out.text}\n\n{survey_text('link', language)} {self.survey_url(survey)}"
            return await connector.send(out.model_copy(update={"text": link, "choices": None}))
        if (s.twilio_template and out.address.startswith("whatsapp:")
                and s.twilio_template in connector.templates(out.address)):
            return await connector.send_template(out, s.twilio_template, {"1": out.text})
        if out.choices is not None and not connector.renders_choices:
            out = out.model_copy(update={"text": f"{out.text}\n{out.choices.fallback}"})
        return await connector.send(out)

    def _stopped(self, item: OutboxItem, survey: Survey, reason: str,
                 notice: str) -> OutboxResult:
        return OutboxResult(item_id=item.id, outcome=Outcome.BLOCKED, attempts=item.attempts + 1,
                            message_id=item.message_id, message_state=DeliveryState.BLOCKED,
                            error=reason, conversation_id=item.conversation_id, notice=notice)

    async def _blocked(self, item: OutboxItem, survey: Survey, comment: bool,
                       reason: str) -> OutboxResult:
        if not comment:
            await self.store.mark_survey(survey.id, "blocked", reason, self.clock())
        what = "comment request" if comment else "satisfaction survey"
        return self._stopped(item, survey, reason,
                             f":no_bell: The {what} was not sent: {mrkdwn_escape(reason)}.")

    def failure(self, item: OutboxItem, error: SendError, attempts: int) -> OutboxResult:
        return OutboxResult(
            item_id=item.id, outcome=Outcome.FAILED, attempts=attempts, error=error.describe(),
            message_id=item.message_id, message_state=DeliveryState.FAILED,
            conversation_id=item.conversation_id,
            notice=(f":warning: The satisfaction survey was not delivered after {attempts} "
                    f"attempt{'s' if attempts != 1 else ''}: {mrkdwn_escape(error.describe())}"))
