"""FAQ answers with a person one step away (issue 21, item 3).

`[faq] file` is a TOML file (path relative to the config file) of `[[faq]]` entries, each with
`questions` (several phrasings of one question) and `answer` (a template of the one syntax).
A customer's message is compared with every phrasing, accents and case ignored (`rapidfuzz`:
the mean of the token-set and token-sort ratios, 0-100, so that a question asked in other
words or in another order still scores high while one shared word does not); the best entry
answers when it reaches `[faq] threshold`.

A customer who asks for a person (`agent`, `human`, `osoba`, `čovek`... and `[faq] person_words`)
stops the FAQ for that conversation, and the thread calls the assignee or the team.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rapidfuzz import fuzz

from bridge.auto_texts import check_text
from bridge.teams import fold, iso639
from bridge.templates import TemplateError

_SPACE = re.compile(r"[^\w]+")
# How customers ask for a person, in the languages the texts come in; accents and case are
# ignored, so "čovek" is also "covek".  `[faq] person_words` adds more.
PERSON_WORDS = (
    "agent", "human", "person", "operator", "a person", "real person", "human being",
    "talk to a person", "talk to a human", "speak to a person", "speak to an agent",
    "representative", "live agent", "support agent", "someone real",
    "osoba", "operater", "covek", "covjek", "clovek", "zivi covek", "ziva osoba",
    "zelim osobu", "hocu osobu", "hocu agenta", "agenta", "agentu", "operatera", "oseba",
    "osebo", "operaterja", "zelim govoriti z osebo", "razgovor sa osobom", "razgovor s osobom",
    "pogovor z osebo",
)
PERSON_CHOICE = "faq:person"  # the id of the FAQ answer's "talk to a person" button
# The texts [faq.texts.<language>] may replace.
FAQ_KEYS = ("faq_offer", "person_button", "person_coming")
MAX_PERSON_WORDS = 8  # a longer message that names "agent" is about something else
# A longer message is for a person, not the FAQ; matching it against every phrasing would hold
# the event loop for seconds (about 4 s for 1 MB against 100 phrasings).
MAX_QUESTION_CHARS = 2000


class FaqSettings(BaseModel):
    """`[faq]`: off until `file` names the FAQ."""

    model_config = ConfigDict(extra="forbid", strict=True)

    file: str = ""  # a TOML file of [[faq]] entries, relative to the config file
    threshold: float = Field(80.0, ge=0, le=100)  # the score (0-100) an answer needs
    quiet_minutes: float = Field(30.0, ge=0, le=24 * 60)  # after an agent's reply
    person_words: list[str] = Field(default_factory=list)  # more ways to ask for a person
    # [faq.texts.<language>] faq_offer / person_button / person_coming: the lines around the
    # bot's answers and the button's label.
    texts: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("texts")
    @classmethod
    def _texts(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for language, table in value.items():
            iso639(language)
            for key, source in table.items():
                if key not in FAQ_KEYS:
                    raise ValueError(f"unknown text {key!r} (known: "
                                     f"{', '.join(FAQ_KEYS)})")
                try:
                    check_text(source)
                except TemplateError as exc:
                    raise ValueError(f"texts.{language}.{key}: {exc}") from None
        return value


class FaqEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    questions: list[str] = Field(min_length=1)
    answer: str = Field(min_length=1)


class FaqFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    faq: list[FaqEntry] = Field(default_factory=list)


class FaqError(ValueError):
    """The FAQ file cannot be used: `key` (inside the file) and `str()` say what, `fix` how."""

    def __init__(self, key: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.key, self.fix = key, fix


@dataclass(frozen=True)
class Match:
    score: float  # 0-100
    question: str  # the phrasing that matched best
    answer: str  # the entry's answer (a template)
    entry: int  # its index in the file


def words_of(text: str) -> str:
    return " ".join(_SPACE.sub(" ", fold(text)).split())


class Faq:
    """The entries of an FAQ file, ready to match."""

    def __init__(self, entries: list[FaqEntry]) -> None:
        self.entries = entries
        self._phrasings = [(words_of(q), q, i) for i, e in enumerate(entries)
                           for q in e.questions if words_of(q)]

    def matches(self, text: str, limit: int = 3) -> list[Match]:
        """The best entries for `text`, best first (one per entry); none for a text longer
        than `MAX_QUESTION_CHARS`."""
        if len(text) > MAX_QUESTION_CHARS:
            return []
        said = words_of(text)
        best: dict[int, Match] = {}
        if not said:
            return []
        for folded, question, index in self._phrasings:
            score = (fuzz.token_set_ratio(said, folded) + fuzz.token_sort_ratio(said, folded)) / 2
            if index not in best or score > best[index].score:
                best[index] = Match(round(score, 1), question, self.entries[index].answer,
                                    index)
        return sorted(best.values(), key=lambda m: -m.score)[:limit]

    def best(self, text: str, threshold: float) -> Match | None:
        found = self.matches(text, 1)
        return found[0] if found and found[0].score >= threshold else None


def load_faq(path: Path) -> Faq:
    """Read and check an FAQ file; `FaqError` names the entry and the fix."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaqError("file", f"{path} does not exist",
                       "create it, or correct [faq] file (relative to the config file)"
                       ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FaqError("file", f"{path} cannot be read: {exc}",
                       "make it a readable UTF-8 file") from None
    except tomllib.TOMLDecodeError as exc:
        raise FaqError("file", f"{path} is not valid TOML: {exc}",
                       "fix the syntax at the position shown") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise FaqError("file", f"{path} nests arrays or tables too deeply",
                       "write each entry as [[faq]] with questions and answer") from None
    try:
        found = FaqFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise FaqError(where, f"{path}: {where}: {err['msg']}",
                       "each [[faq]] has questions = [\"...\", ...] and answer = \"...\""
                       ) from None
    for i, entry in enumerate(found.faq):
        try:
            check_text(entry.answer)  # renders with sample values: a misspelt variable is caught
        except TemplateError as exc:
            raise FaqError(f"faq[{i}].answer", f"{path}: faq[{i}].answer: {exc}",
                           "correct the template ({{ customer.first_name }} and the like)"
                           ) from None
    return Faq(found.faq)


def faq_report(faq: Faq, question: str, threshold: float, fmt: str = "table") -> str:
    """`bridge faq test`: the best entries for a question, and whether the best would answer."""
    found = faq.matches(question)
    answers = bool(found) and found[0].score >= threshold
    if fmt == "json":
        return json.dumps({"question": question, "threshold": threshold, "answers": answers,
                           "matches": [{"entry": m.entry, "score": m.score,
                                        "question": m.question, "answer": m.answer}
                                       for m in found]}, ensure_ascii=False)
    lines = [f"{m.score:5.1f}  faq[{m.entry}] {m.question!r}" for m in found]
    verdict = (f"answers with faq[{found[0].entry}] (threshold {threshold:g})" if answers
               else f"no answer: nothing reaches the threshold {threshold:g}")
    return "\n".join([*lines, verdict])


def faq_path(config_path: Path, file: str) -> Path:
    path = Path(file)
    return path if path.is_absolute() else config_path.parent / path


class PersonWords:
    """Recognizes a customer asking for a person."""

    def __init__(self, extra: list[str]) -> None:
        self.phrases = frozenset(words_of(w) for w in (*PERSON_WORDS, *extra) if words_of(w))

    def __call__(self, text: str) -> bool:
        if len(text) > MAX_QUESTION_CHARS:
            return False
        said = words_of(text)
        if not said:
            return False
        if said in self.phrases:
            return True
        tokens = said.split()
        if len(tokens) > MAX_PERSON_WORDS:
            return False
        padded = f" {said} "
        return any(f" {phrase} " in padded for phrase in self.phrases)
