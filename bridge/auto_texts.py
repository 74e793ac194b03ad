"""The customer-facing texts of automatic answers, in English, Serbian (Latin), Croatian and
Slovenian, as templates of the one syntax (`bridge/templates.py`).

Every text can be replaced in config: `closed_reply` and `greeting` of a team (one text, or a
table of texts by language), and `[faq.texts.<language>]` for the FAQ's lines.  A language
without a text of its own falls back to English.

Variables every text sees: `customer` (`name`, `first_name`), `team`, `language`, `open`
(the team is open now), `next_open` (the next opening, written for the customer, "" when
open or unknown), `next_open_iso`, `wait` (the expected wait, "" when not known), `question`
and `answer` (the FAQ's, in `faq_offer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.templates import compile_text

FALLBACK = "en"
KEYS = ("closed_reply", "greeting", "faq_offer", "person_button", "person_coming")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "closed_reply": "Thank you for your message. We are closed right now"
                        "{% if next_open %}; we will answer from {{ next_open }}{% endif %}.",
        "greeting": "Hello{% if customer.first_name %} {{ customer.first_name }}{% endif %}, "
                    "thank you for writing. {% if open %}A person will answer"
                    "{% if wait %} in about {{ wait }}{% else %} shortly{% endif %}."
                    "{% else %}We are closed right now{% if next_open %}; we will answer "
                    "from {{ next_open }}{% endif %}.{% endif %}",
        "faq_offer": "Reply \"agent\" to talk to a person.",
        "person_button": "Talk to a person",
        "person_coming": "Thank you, a person will answer you here.",
    },
    "sr": {
        "closed_reply": "Hvala na poruci. Trenutno ne radimo"
                        "{% if next_open %}; odgovorićemo od {{ next_open }}{% endif %}.",
        "greeting": "Zdravo{% if customer.first_name %} {{ customer.first_name }}{% endif %}, "
                    "hvala što ste nam pisali. {% if open %}Odgovoriće vam osoba iz tima"
                    "{% if wait %} za oko {{ wait }}{% else %} uskoro{% endif %}."
                    "{% else %}Trenutno ne radimo{% if next_open %}; odgovorićemo od "
                    "{{ next_open }}{% endif %}.{% endif %}",
        "faq_offer": "Odgovorite \"agent\" da razgovarate sa osobom.",
        "person_button": "Razgovor sa osobom",
        "person_coming": "Hvala, odgovoriće vam osoba iz tima ovde.",
    },
    "hr": {
        "closed_reply": "Hvala na poruci. Trenutačno ne radimo"
                        "{% if next_open %}; odgovorit ćemo od {{ next_open }}{% endif %}.",
        "greeting": "Pozdrav{% if customer.first_name %} {{ customer.first_name }}{% endif %}, "
                    "hvala što ste nam se javili. {% if open %}Odgovorit će vam osoba iz tima"
                    "{% if wait %} za otprilike {{ wait }}{% else %} uskoro{% endif %}."
                    "{% else %}Trenutačno ne radimo{% if next_open %}; odgovorit ćemo od "
                    "{{ next_open }}{% endif %}.{% endif %}",
        "faq_offer": "Odgovorite \"agent\" za razgovor s osobom.",
        "person_button": "Razgovor s osobom",
        "person_coming": "Hvala, odgovorit će vam osoba iz tima ovdje.",
    },
    "sl": {
        "closed_reply": "Hvala za sporočilo. Trenutno ne delamo"
                        "{% if next_open %}; odgovorili bomo od {{ next_open }}{% endif %}.",
        "greeting": "Pozdravljeni{% if customer.first_name %} {{ customer.first_name }}"
                    "{% endif %}, hvala, ker ste nam pisali. {% if open %}Odgovorila vam bo "
                    "oseba iz ekipe{% if wait %} v približno {{ wait }}{% else %} kmalu"
                    "{% endif %}.{% else %}Trenutno ne delamo{% if next_open %}; odgovorili "
                    "bomo od {{ next_open }}{% endif %}.{% endif %}",
        "faq_offer": "Odgovorite \"agent\" za pogovor z osebo.",
        "person_button": "Pogovor z osebo",
        "person_coming": "Hvala, tukaj vam bo odgovorila oseba iz ekipe.",
    },
}
# Bosnian and Montenegrin readers are served by the Serbian (Latin) texts.
ALIASES = {"bs": "sr", "me": "sr", "cnr": "sr", "sh": "sr"}

_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "sr": ("ponedeljak", "utorak", "sreda", "četvrtak", "petak", "subota", "nedelja"),
    "hr": ("ponedjeljak", "utorak", "srijeda", "četvrtak", "petak", "subota", "nedjelja"),
    "sl": ("ponedeljek", "torek", "sreda", "četrtek", "petek", "sobota", "nedelja"),
}
_MINUTES = {"en": ("minute", "minutes"), "sr": ("minut", "minuta"), "hr": ("minutu", "minuta"),
            "sl": ("minuto", "minut")}
_HOURS = {"en": ("hour", "hours"), "sr": ("sat", "sati"), "hr": ("sat", "sati"),
          "sl": ("uro", "ur")}


def language_of(hint: str | None, team_language: str) -> str:
    """The customer's language as the texts know it: the platform's hint (`sr-Latn-RS`),
    else the team's language."""
    for value in (hint, team_language):
        code = (value or "").split("-")[0].split("_")[0].strip().lower()
        code = ALIASES.get(code, code)
        if code:
            return code
    return FALLBACK


def builtin(key: str, language: str) -> str:
    return TEXTS.get(language, TEXTS[FALLBACK]).get(key) or TEXTS[FALLBACK][key]


def choose(configured: str | Mapping[str, str] | bool, key: str, language: str) -> str | None:
    """The template for `key` in `language`: the admin's text (one for all languages, or the
    one for this language, else English, else the built-in), the built-in one for `true`,
    None when the answer is off (`false`)."""
    if configured is False:
        return None
    if isinstance(configured, str):
        return configured
    if isinstance(configured, Mapping):
        found = configured.get(language) or configured.get(FALLBACK)
        if found:
            return found
    return builtin(key, language)


def when(at: float, zone: ZoneInfo, language: str, now: float) -> str:
    """An instant as the customer reads it: "Monday 9:00" within a week, else "14.12.2026
    9:00", in the team's time zone."""
    local = datetime.fromtimestamp(at, zone)
    clock = f"{local.hour}:{local.minute:02d}"
    if at - now < 6.5 * 86_400:
        days = _DAYS.get(language, _DAYS[FALLBACK])
        return f"{days[local.weekday()]} {clock}"
    return f"{local.day}.{local.month}.{local.year} {clock}"


def duration(seconds: float, language: str) -> str:
    """An expected wait, rounded: "5 minutes", "2 hours"."""
    minutes = max(1, round(seconds / 60))
    if minutes < 90:
        one, many = _MINUTES.get(language, _MINUTES[FALLBACK])
        return f"{minutes} {one if minutes == 1 else many}"
    hours = round(minutes / 60)
    one, many = _HOURS.get(language, _HOURS[FALLBACK])
    return f"{hours} {one if hours == 1 else many}"


def sample_variables(language: str = FALLBACK) -> dict[str, object]:
    """What every automatic text may use, with example values: `check-config` renders each
    text with them, so a misspelt variable stops the bridge from starting."""
    return {"customer": {"name": "Ann Example", "first_name": "Ann"}, "team": "support",
            "language": language, "open": False, "next_open": "Monday 9:00",
            "next_open_iso": "2026-12-07T09:00+01:00", "wait": "10 minutes",
            "question": "When are you open?", "answer": "From 9:00 to 17:00.",
            "conversation": 1}


def check_text(source: str) -> str:
    """A configured text that compiles and renders with every variable, open and closed;
    `TemplateError` (a ValueError) says what is wrong."""
    text = compile_text(source)
    for is_open in (False, True):
        text.render({**sample_variables(), "open": is_open})
    return source


def check_texts(value: bool | str | dict[str, str]) -> bool | str | dict[str, str]:
    """A team's `closed_reply` or `greeting`: true/false, one text, or texts by language."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for language, source in value.items():
            code = language.strip().lower()
            if len(code) != 2 or not code.isalpha():
                raise ValueError(f"{language!r} is not a two-letter ISO 639-1 code such as "
                                 "\"en\"")
            try:
                check_text(source)
            except ValueError as exc:
                raise ValueError(f"the {language!r} text: {exc}") from None
    return value
