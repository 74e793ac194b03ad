"""The language of a customer's first message, for routing rules that name `languages`.

lingua-language-detector is loaded on the first guess (not at start), with only the languages
the rules name, and kept.  It answers with the languages a text plausibly is in: every one
whose confidence is within `margin` of the best (Latin-script Serbian, Croatian and Bosnian
are hard to tell apart from a short text, so such a text is "sr, hr or bs"), and a rule
matches only when it names all of them.  A text too short to tell (`min_letters`) is in the
default language.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

MARGIN = 0.25
MIN_LETTERS = 8
# Languages a short text rarely tells apart: naming one loads them all, so that a text that
# may be any of them is not taken for the one named.  lingua's Serbian is Cyrillic: a
# Latin-script text it finds Croatian or Bosnian may as well be Serbian.
CLOSE = (frozenset({"sr", "hr", "bs"}),)
LATIN_SERBIAN_LOOKALIKES = frozenset({"hr", "bs"})


class LanguageGuess:
    def __init__(self, margin: float = MARGIN, min_letters: int = MIN_LETTERS) -> None:
        self.margin = margin
        self.min_letters = min_letters
        self._detectors: dict[frozenset[str], Any] = {}
        self._lock = threading.Lock()

    def loaded(self, languages: frozenset[str]) -> bool:
        return self._expand(languages) in self._detectors

    def load(self, languages: frozenset[str]) -> None:
        """Load the models (about a second and 120-300 MiB): the router calls it in a
        thread, before the first guess, so the event loop never waits for it."""
        self._detector(self._expand(languages))

    @staticmethod
    def _expand(languages: frozenset[str]) -> frozenset[str]:
        for group in CLOSE:
            if languages & group:
                languages = languages | group
        return languages

    def _detector(self, languages: frozenset[str]) -> Any:
        with self._lock:
            found = self._detectors.get(languages)
            if found is None:
                from lingua import IsoCode639_1, LanguageDetectorBuilder

                codes = [getattr(IsoCode639_1, code.upper(), None) for code in sorted(languages)]
                known = [code for code in codes if code is not None]
                if len(known) < 2:  # lingua needs two; English is the usual other one
                    known.append(IsoCode639_1.EN if IsoCode639_1.EN not in known
                                 else IsoCode639_1.DE)
                found = (LanguageDetectorBuilder.from_iso_codes_639_1(*known)
                         .with_preloaded_language_models().build())
                self._detectors[languages] = found
                log.info("language detector loaded for %s", ", ".join(sorted(languages)))
            return found

    def __call__(self, text: str, languages: frozenset[str], fallback: str) -> frozenset[str]:
        """The languages (ISO 639-1) among `languages` that `text` plausibly is in;
        `{fallback}` when it is too short to tell."""
        if sum(c.isalpha() for c in text) < self.min_letters:
            return frozenset({fallback})
        languages = self._expand(languages)
        values = self._detector(languages).compute_language_confidence_values(text)
        if not values:
            return frozenset({fallback})
        best = values[0].value
        found = {str(v.language.iso_code_639_1.name).lower() for v in values
                 if v.value >= best - self.margin}
        if "sr" in languages and found & LATIN_SERBIAN_LOOKALIKES \
                and not any("\u0400" <= c <= "\u04ff" for c in text):
            found.add("sr")
        return frozenset(found)
