"""Answers to surveys (issue 23): a button (a signed choice id), a number reply, the comment
after a low score, or the survey page.  An answer is recorded once, lands in the thread (with
the assignee mentioned on a low score) and is never a message of the conversation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bridge.auto_texts import language_of
from bridge.csat_settings import csat_variables
from bridge.survey_texts import LANGUAGE_FIELD, survey_text
from bridge.surveys import (
    COMMENT_PREFIX,
    COMMENT_WINDOW,
    MAX_COMMENT,
    SCORE,
    Surveys,
    parse_score,
    render_score,
    score_range,
)
from bridge.templates import TemplateError, render_text
from connectors.base import SendError
from storage.base import Survey
from vocab.models import InboundMessage, IngestResult
from vocab.mrkdwn import mrkdwn_escape

log = logging.getLogger(__name__)
SEEN_KEPT = 2 * 86400.0  # seconds a taken number reply is remembered (platforms retry less)
KNOWN_KEPT = 10_000  # addresses whose language is known to be stored (then forgotten at once)


class Answers:
    def __init__(self, surveys: Surveys) -> None:
        self.surveys = surveys
        self.store = surveys.store
        self._known: dict[tuple[str, str], str] = {}  # address -> language already stored

    async def intercept(self, items: Sequence[InboundMessage]) -> list[InboundMessage]:
        """The customer messages that are not survey answers (those are recorded here)."""
        keep: list[InboundMessage] = []
        for item in items:
            if not await self._consumed(item):
                keep.append(item)
        return keep

    async def remember_languages(self, items: Sequence[InboundMessage],
                                 results: Sequence[IngestResult]) -> None:
        """Keep the language a customer's platform reports (Telegram's `language_code`, the
        widget's page language) as the customer field `language`, once: the survey texts use
        it when the conversation is closed.  A value already there (an agent may set it) is
        kept."""
        for item, result in zip(items, results, strict=True):
            fields = self.surveys.fields
            if (not item.language or fields is None or result.duplicate
                    or result.conversation_id is None):
                continue
            code = language_of(item.language, "")
            key = (item.connector, item.address)
            if self._known.get(key) == code:
                continue
            conv = await self.store.get_conversation(result.conversation_id)
            if conv is None:
                continue
            if not (await fields.customer_fields(conv.customer_id)).get(LANGUAGE_FIELD):
                await fields.set_customer_field(conv.customer_id, LANGUAGE_FIELD, code,
                                                    "platform", self.surveys.clock())
            if len(self._known) >= KNOWN_KEPT:
                self._known.clear()
            self._known[key] = code

    async def _consumed(self, item: InboundMessage) -> bool:
        if item.choice is not None and (item.choice.startswith("s:") or not item.text):
            await self._picked(item)
            return True  # a survey pick is never a message, valid or not
        if item.edit_of is not None or item.attachments or item.opt_out is not None:
            return False
        seen = f"answer:{item.connector}:{item.platform_message_id}"
        now = self.surveys.clock()
        text = item.text.strip()
        if not text:
            return False
        redelivered, survey, waiting = await self.store.survey_inbound(
            item.connector, item.address, seen, now, now - COMMENT_WINDOW)
        if redelivered:
            return True  # a redelivery of an answer already recorded
        if survey is not None:
            score = parse_score(text, survey.scale)
            if score is not None:
                await self.answer(survey, score, None, item.sender_name, seen)
                return True
        if waiting is not None:
            return await self._comment(waiting, text, item.sender_name, seen)
        return False

    async def _picked(self, item: InboundMessage) -> None:
        """A button: `s:<token>:<score>`, signed by us and sent to this very address."""
        accepted, team = False, "support"
        language = language_of(item.language, self.surveys.language_of_team(team))
        parts = (item.choice or "").split(":")
        if len(parts) == 3 and parts[0] == "s" and await self.surveys.verified(parts[1]):
            survey = await self.store.awaiting_survey(item.connector, item.address,
                                                      self.surveys.clock())
            if survey is not None and survey.token == parts[1] and SCORE.fullmatch(parts[2]) \
                    and int(parts[2]) in score_range(survey.scale):
                accepted = await self.answer(survey, int(parts[2]), None, item.sender_name)
                team, language = survey.team, await self.surveys.survey_language(survey)
        text = self._thanks(team, language) if accepted else survey_text("closed", language)
        connector = self.surveys.connectors.get(item.connector)
        if connector is not None and item.choice_ack is not None:
            try:
                await connector.acknowledge_choice(item, text, accepted)
            except SendError as exc:  # the answer is recorded; only the spinner stays
                log.warning("%s: acknowledging a pick failed: %s", item.connector,
                            exc.describe())

    def _thanks(self, team: str, language: str) -> str:
        s = self.surveys.settings(team)
        try:
            return render_text(survey_text("thanks", language, s.thanks),
                               csat_variables("", s.sender, team))
        except TemplateError:
            return "Thank you!"

    async def answer(self, survey: Survey, score: int, comment: str | None, name: str,
                     seen: str | None = None) -> bool:
        """Record the answer once; False: answered before, expired, or never sent."""
        s = self.surveys.settings(survey.team)
        comment = (comment or "").strip()[:MAX_COMMENT] or None
        low = survey.kind == "csat" and score <= s.low_score
        ask = low and s.comment and comment is None
        line = f"{render_score(survey, score)} from {mrkdwn_escape(name or 'the customer')}"
        if comment:
            line += f": {mrkdwn_escape(comment)}"
        if low and survey.assignee:
            line += f" <@{survey.assignee}>"
        out = await self.store.answer_survey(survey.id, score, comment, ask, (line,),
                                             self.surveys.clock(), seen)
        if out is None:
            return False
        self.surveys.submit(out)
        if seen is not None:  # the marks of answers that can no longer be redelivered
            await self.store.prune_state("csat", "answer:", self.surveys.clock() - SEEN_KEPT)
        if ask:
            follow = await self.store.survey_follow_up(
                survey, render_text(survey_text("comment_question",
                                                 await self.surveys.survey_language(survey),
                                                 s.comment_question),
                                     csat_variables("", s.sender, survey.team)), s.sender,
                COMMENT_PREFIX + survey.token, self.surveys.clock())
            self.surveys.submit([follow])
        elif survey.kind == "csat" and s.nps:
            await self._nps(survey)
        return True

    async def _comment(self, survey: Survey, text: str, name: str, seen: str) -> bool:
        line = (f":speech_balloon: Comment from {mrkdwn_escape(name or 'the customer')} on the "
                f"{render_score(survey, survey.score or 0)} rating: "
                f"{mrkdwn_escape(text[:MAX_COMMENT])}")
        out = await self.store.comment_survey(survey.id, text[:MAX_COMMENT], (line,),
                                              self.surveys.clock(), seen)
        if out is None:
            return False
        self.surveys.submit(out)
        s = self.surveys.settings(survey.team)
        if s.nps:
            await self._nps(survey)
        return True

    async def _nps(self, csat: Survey) -> None:
        conv = await self.store.get_conversation(csat.conversation_id)
        if conv is None:
            return
        s = self.surveys.settings(csat.team)
        if await self.surveys._nps_due(conv, s):
            await self.surveys._open(conv, "nps", csat.team, "0-10")
