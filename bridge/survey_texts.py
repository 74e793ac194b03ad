"""The built-in texts of satisfaction surveys (issue 23) in the languages of the automatic
answers (`bridge/auto_texts.py`): English, Serbian (Latin), Croatian and Slovenian.

The customer's language is chosen as for the automatic answers: the language their platform
reported (kept as the customer field `language`, which an agent may change), else the team's
`language`; a language without texts of its own gets English.  A text set in `[csat]` or
`[teams.<name>.csat]` (`question`, `comment_question`, `nps_question`, `thanks`) wins over the
built-in one, in every language.
"""

from __future__ import annotations

from bridge.auto_texts import FALLBACK, language_of

LANGUAGE_FIELD = "language"  # the customer field that keeps the platform's hint

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "question": "How did we do? Please rate your conversation with us.",
        "comment_question": "Sorry to hear that. What could we have done better?",
        "nps_question": "How likely are you to recommend us to a friend or colleague? "
                        "Reply with a number from 0 to 10.",
        "thanks": "Thank you for your feedback!",
        "number_hint": "Reply with a number from 1 (very bad) to 5 (excellent).",
        "button": "Rate",
        "labels": "Very bad|Bad|OK|Good|Excellent",
        "link": "Answer with one click:",
        "closed": "This survey is closed.",
        "page_title": "Your feedback",
        "page_heading": "How did we do?",
        "page_comment": "Anything you would like to tell us? (optional)",
        "page_send": "Send",
        "page_pick": "Please pick a score.",
        "page_recorded": "Your answer has been recorded.",
        "page_answered": "This survey has already been answered.",
    },
    "sr": {
        "question": "Kako smo vam pomogli? Molimo ocenite razgovor sa nama.",
        "comment_question": "Žao nam je. Šta smo mogli da uradimo bolje?",
        "nps_question": "Koliko je verovatno da biste nas preporučili prijatelju ili kolegi? "
                        "Odgovorite brojem od 0 do 10.",
        "thanks": "Hvala na povratnoj informaciji!",
        "number_hint": "Odgovorite brojem od 1 (veoma loše) do 5 (odlično).",
        "button": "Oceni",
        "labels": "Veoma loše|Loše|U redu|Dobro|Odlično",
        "link": "Odgovorite jednim klikom:",
        "closed": "Ova anketa je zatvorena.",
        "page_title": "Vaše mišljenje",
        "page_heading": "Kako smo vam pomogli?",
        "page_comment": "Želite li nešto da nam poručite? (nije obavezno)",
        "page_send": "Pošalji",
        "page_pick": "Molimo izaberite ocenu.",
        "page_recorded": "Vaš odgovor je zabeležen.",
        "page_answered": "Na ovu anketu je već odgovoreno.",
    },
    "hr": {
        "question": "Kako smo vam pomogli? Molimo ocijenite razgovor s nama.",
        "comment_question": "Žao nam je. Što smo mogli učiniti bolje?",
        "nps_question": "Koliko je vjerojatno da biste nas preporučili prijatelju ili kolegi? "
                        "Odgovorite brojem od 0 do 10.",
        "thanks": "Hvala na povratnoj informaciji!",
        "number_hint": "Odgovorite brojem od 1 (vrlo loše) do 5 (odlično).",
        "button": "Ocijeni",
        "labels": "Vrlo loše|Loše|U redu|Dobro|Odlično",
        "link": "Odgovorite jednim klikom:",
        "closed": "Ova anketa je zatvorena.",
        "page_title": "Vaše mišljenje",
        "page_heading": "Kako smo vam pomogli?",
        "page_comment": "Želite li nam nešto poručiti? (nije obavezno)",
        "page_send": "Pošalji",
        "page_pick": "Molimo odaberite ocjenu.",
        "page_recorded": "Vaš odgovor je zabilježen.",
        "page_answered": "Na ovu anketu već je odgovoreno.",
    },
    "sl": {
        "question": "Kako smo vam pomagali? Prosimo, ocenite pogovor z nami.",
        "comment_question": "Žal nam je. Kaj bi lahko naredili bolje?",
        "nps_question": "Kako verjetno je, da bi nas priporočili prijatelju ali sodelavcu? "
                        "Odgovorite s številko od 0 do 10.",
        "thanks": "Hvala za vaše mnenje!",
        "number_hint": "Odgovorite s številko od 1 (zelo slabo) do 5 (odlično).",
        "button": "Oceni",
        "labels": "Zelo slabo|Slabo|V redu|Dobro|Odlično",
        "link": "Odgovorite z enim klikom:",
        "closed": "Ta anketa je zaprta.",
        "page_title": "Vaše mnenje",
        "page_heading": "Kako smo vam pomagali?",
        "page_comment": "Bi nam želeli še kaj sporočiti? (neobvezno)",
        "page_send": "Pošlji",
        "page_pick": "Prosimo, izberite oceno.",
        "page_recorded": "Vaš odgovor je zabeležen.",
        "page_answered": "Na to anketo je bil že podan odgovor.",
    },
}


def survey_text(key: str, language: str, configured: str = "") -> str:
    """The template for `key`: the admin's text when set, else the built-in one in
    `language` (English for a language without texts)."""
    if configured:
        return configured
    return TEXTS.get(language, TEXTS[FALLBACK]).get(key) or TEXTS[FALLBACK][key]


def labels(language: str) -> tuple[str, ...]:
    """The names of the five CSAT scores, "Very bad" to "Excellent"."""
    return tuple(survey_text("labels", language).split("|"))


def survey_language(fields: dict[str, str], team_language: str) -> str:
    """The customer's language (the customer field, else the team's), as the texts know it."""
    return language_of(fields.get(LANGUAGE_FIELD) or None, team_language)
