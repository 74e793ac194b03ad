"""The one-page survey (issue 23): `GET /survey/<token>` shows the scale and a comment box and
never uses the token up (mail scanners open links); the first `POST` with `score` (and
`comment`) records the answer, a later one gets 410.  Tokens are signed (checked before any
lookup) and expire after `answer_days`."""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiohttp import web

from bridge.csat_settings import csat_variables
from bridge.survey_answers import Answers
from bridge.survey_texts import TEXTS, labels, survey_text
from bridge.surveys import EMOJI, MAX_COMMENT, SCORE, score_range
from bridge.templates import TemplateError, render_text
from storage.base import Survey

MAX_FORM = 16 * 1024
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
         "color:#1d1c1d}fieldset{border:0;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}"
         "label.score{border:1px solid #bbb;border-radius:.5rem;padding:.5rem .8rem;"
         "cursor:pointer}textarea{width:100%;min-height:6rem;margin:.6rem 0}"
         "button{padding:.6rem 1.4rem;font-size:1rem}")


def page(title: str, body: str, status: int = 200, language: str = "en") -> web.Response:
    text = (f"<!doctype html><html lang=\"{html.escape(language)}\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>")
    return web.Response(text=text, status=status, content_type="text/html",
                        headers=HEADERS)


def _labels(survey: Survey, language: str) -> Sequence[tuple[int, str]]:
    if survey.kind == "nps":
        return [(n, str(n)) for n in score_range("0-10")]
    names = labels(language)
    if survey.scale == "emoji":
        return [(n, f"{EMOJI[n - 1]} {names[n - 1]}") for n in range(1, 6)]
    return [(n, f"{n} – {names[n - 1]}") for n in range(1, 6)]


class SurveyPage:
    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.surveys = answers.surveys

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/survey/{token}", self.show), web.post("/survey/{token}", self.submit)]

    async def _survey(self, request: web.Request) -> Survey | web.Response:
        token = request.match_info["token"]
        survey = None
        if await self.surveys.verified(token):
            survey = await self.surveys.store.survey_by_token(token)
        if survey is None or survey.state in ("scheduled", "cancelled", "blocked"):
            return page("Survey not found", "<h1>Survey not found</h1><p>This link is not "
                        "valid.</p>", 404)
        if survey.state == "answered":
            return await self._answered(survey)
        if survey.expires_at is not None and survey.expires_at <= self.surveys.clock():
            return page("Survey closed", "<h1>This survey has closed</h1><p>Answers were "
                        "accepted for a limited time.</p>", 410)
        return survey

    async def _answered(self, survey: Survey) -> web.Response:
        language = await self.surveys.survey_language(survey)
        thanks = html.escape(self.answers._thanks(survey.team, language))
        done = html.escape(survey_text("page_answered", language))
        return page(done, f"<h1>{thanks}</h1><p>{done}</p>", 410, language)

    async def show(self, request: web.Request) -> web.StreamResponse:
        found = await self._survey(request)
        if isinstance(found, web.Response):
            return found
        return await self._form(found)

    async def _form(self, survey: Survey, error: str = "", status: int = 200) -> web.Response:
        """The form in the customer's language (`error`: a key of the survey texts)."""
        s = self.surveys.settings(survey.team)
        language = await self.surveys.survey_language(survey)

        def text(key: str) -> str:  # a key of the texts; other words as they are
            return html.escape(survey_text(key, language) if key in TEXTS["en"] else key)
        try:
            question = render_text(
                survey_text("nps_question", language, s.nps_question) if survey.kind == "nps"
                else survey_text("question", language, s.question),
                csat_variables("", s.sender, survey.team))
        except TemplateError:
            question = survey_text("page_heading", language)
        choices = "".join(
            f"<label class=\"score\"><input type=\"radio\" name=\"score\" value=\"{n}\" "
            f"required> {html.escape(label)}</label>" for n, label in _labels(survey, language))
        problem = f"<p role=\"alert\">{text(error)}</p>" if error else ""
        body = (f"<h1>{html.escape(question)}</h1>{problem}<form method=\"post\">"
                f"<fieldset aria-label=\"score\">{choices}</fieldset>"
                f"<label for=\"comment\">{text('page_comment')}</label>"
                f"<textarea id=\"comment\" name=\"comment\" maxlength=\"{MAX_COMMENT}\">"
                f"</textarea><button type=\"submit\">{text('page_send')}</button></form>")
        return page(survey_text("page_title", language), body, status, language)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_FORM:
            return page("Too large", "<h1>Too large</h1>", 413)
        found = await self._survey(request)
        if isinstance(found, web.Response):
            return found
        try:
            form = await request.post()
        except ValueError:
            return await self._form(found, "The form could not be read.", 400)
        raw_score, comment = form.get("score"), form.get("comment", "")
        if not isinstance(raw_score, str) or not SCORE.fullmatch(raw_score.strip()) or \
                int(raw_score) not in score_range(found.scale):
            return await self._form(found, "page_pick", 400)
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            return await self._form(found, f"The comment is limited to {MAX_COMMENT} characters.",
                              400)
        name = ""
        conv = await self.surveys.store.get_conversation(found.conversation_id)
        if conv is not None:
            identity = await self.surveys.store.get_identity(conv.identity_id)
            name = identity.display_name if identity is not None else ""
        if not await self.answers.answer(found, int(raw_score), comment, name):
            return await self._answered(found)
        language = await self.surveys.survey_language(found)
        thanks = html.escape(self.answers._thanks(found.team, language))
        recorded = html.escape(survey_text("page_recorded", language))
        return page(thanks, f"<h1>{thanks}</h1><p>{recorded}</p>", language=language)
