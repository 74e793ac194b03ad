"""The `[csat]` table (issue 23) and its per-team override `[teams.<name>.csat]`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.templates import TemplateError, compile_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def csat_variables(name: str, agent: str, team: str) -> dict[str, object]:
    """What every survey text may use (the question, the comment question, the NPS question,
    the thanks): `{{ customer.name }}`, `{{ customer.first_name }}`, `{{ agent }}`, `{{ team }}`."""
    name = name.strip()
    return {"customer": {"name": name, "first_name": name.split(" ")[0] if name else ""},
            "agent": agent, "team": team}


def _text(value: str | None) -> str | None:
    if value is not None:
        try:
            # Rendered with sample values, so a misspelt variable stops check-config rather
            # than the survey.
            compile_text(value).render(csat_variables("Ann Example", "Support", "support"))
        except TemplateError as exc:
            raise ValueError(f"not a valid template: {exc}") from exc
    return value


class CsatSettings(_Strict):
    """After an agent closes a conversation, ask the customer how it went."""

    enabled: bool = False
    # The question, a template ({{ customer.name }}, {{ agent }}, {{ team }}); empty (and so
    # comment_question, nps_question, thanks): the built-in text in the customer's language
    # (bridge/survey_texts.py).
    question: str = ""
    scale: Literal["1-5", "emoji"] = "1-5"
    comment: bool = True  # after a low score, ask what went wrong (the page always has a box)
    comment_question: str = ""
    low_score: int = Field(default=2, ge=1, le=5)  # this score and below mention the assignee
    answer_days: float = Field(default=7.0, gt=0, le=365)
    nps: bool = False  # also ask 0-10 "would you recommend us" (after the CSAT answer)
    nps_question: str = ""
    nps_interval_days: float = Field(default=90.0, ge=0)
    sender: str = "Support"  # the name the question is sent under
    thanks: str = ""
    # WhatsApp through Twilio: an approved Content template with the scale as buttons or a
    # list (its name under [[connectors.twilio.templates]]); none: a number reply.
    twilio_template: str = ""

    _question = field_validator("question", "comment_question", "nps_question",
                                "thanks")(_text)


class CsatOverride(_Strict):
    """`[teams.<name>.csat]`: any key of `[csat]`; the rest comes from `[csat]`."""

    enabled: bool | None = None
    question: str | None = None
    scale: Literal["1-5", "emoji"] | None = None
    comment: bool | None = None
    comment_question: str | None = None
    low_score: int | None = Field(default=None, ge=1, le=5)
    answer_days: float | None = Field(default=None, gt=0, le=365)
    nps: bool | None = None
    nps_question: str | None = None
    nps_interval_days: float | None = Field(default=None, ge=0)
    sender: str | None = None
    thanks: str | None = None
    twilio_template: str | None = None

    _question = field_validator("question", "comment_question", "nps_question",
                                "thanks")(_text)

    def over(self, base: CsatSettings) -> CsatSettings:
        return base.model_copy(update=self.model_dump(exclude_none=True))
