"""Answers to surveys (issue 23): a button (a signed choice id), a number reply, the comment
after a low score, or the survey page.  An answer is recorded once, lands in the thread (with
the assignee mentioned on a low score) and is never a message of the conversation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bridge.csat_settings import csat_variables
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
from vocab.models import InboundMessage
from vocab.mrkdwn import mrkdwn_escape

log = logging.getLogger(__name__)
CLOSED_TEXT = "This survey is closed."
SEEN_KEPT = 2 * 86400.0  # seconds a taken number reply is remembered (platforms retry less)


class Answers:
    def __init__(self, surveys: Surveys) -> None:
        self.surveys = surveys
        self.store = surveys.store

    async def intercept(self, items: Sequence[InboundMessage]) -> list[InboundMessage]:
        """The customer messages that are not survey answers (those are recorded here)."""
        keep: list[InboundMessage] = []
        for item in items:
            if not await self._consumed(item):
                keep.append(item)
        return keep

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
        accepted = False
        parts = (item.choice or "").split(":")
        if len(parts) == 3 and parts[0] == "s" and await self.surveys.verified(parts[1]):
            survey = await self.store.awaiting_survey(item.connector, item.address,
                                                      self.surveys.clock())
            if survey is not None and survey.token == parts[1] and SCORE.fullmatch(parts[2]) \
                    and int(parts[2]) in score_range(survey.scale):
                accepted = await self.answer(survey, int(parts[2]), None, item.sender_name)
        text = self._thanks("support") if accepted else CLOSED_TEXT
        connector = self.surveys.connectors.get(item.connector)
        if connector is not None and item.choice_ack is not None:
            try:
                await connector.acknowledge_choice(item, text, accepted)
            except SendError as exc:  # the answer is recorded; only the spinner stays
                log.warning("%s: acknowledging a pick failed: %s", item.connector,
                            exc.describe())

    def _thanks(self, team: str) -> str:
        s = self.surveys.settings(team)
        try:
            return render_text(s.thanks, csat_variables("", s.sender, team))
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
                survey, render_text(s.comment_question,
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
            await self.surveys._open(conv, "nps", csat.team, "0-10", s.nps_question)
