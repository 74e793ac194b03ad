"""Teams and routing rules: `[teams.<name>]` (each with its Slack channel) and
`[[routing.rules]]` (first match wins; no match goes to the default team, `support`).

The rules are matched before a customer's message is stored: the store opens a conversation in
the channel the rules chose and keeps it there (a later message joins it wherever it is).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.auto_texts import check_texts
from bridge.csat_settings import CsatOverride
from bridge.hours import parse_duration
from vocab.models import InboundMessage

DEFAULT_TEAM = "support"
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
TEAM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
LANGUAGE = re.compile(r"[a-z]{2}")
_WORD = re.compile(r"\w+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TeamSettings(_Strict):
    """One `[teams.<name>]` table."""

    channel: str = ""  # a Slack channel id; `support` may leave it to [slack] support_channel
    members: list[str] = Field(default_factory=list)  # Slack user ids; empty: everybody
    timezone: str | None = None  # IANA; None: [conversations] timezone
    language: str = "en"  # ISO 639-1: the team's default when a guess is unsure
    csat: CsatOverride | None = None  # `[teams.<name>.csat]`: this team's survey settings
    hours: str | None = None  # an [hours.<name>] table; None: always open
    # Automatic answers (issue 21, bridge/auto.py): false (off), true (the built-in texts in
    # the customer's language), one template, or a table of templates by language.
    closed_reply: bool | str | dict[str, str] = False
    greeting: bool | str | dict[str, str] = False
    auto_quiet_minutes: float = Field(10.0, ge=0, le=24 * 60)  # after a person's reply
    # Response-time targets, counted in business hours ("90s", "2m", "1h", "2d"); none: none.
    first_response: str | None = None
    next_response: str | None = None
    resolution: str | None = None
    alerts_channel: str = ""  # a Slack channel id: one line per missed target

    @field_validator("first_response", "next_response", "resolution")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("alerts_channel")
    @classmethod
    def _alerts(cls, value: str) -> str:
        if value and not CHANNEL_ID.fullmatch(value):
            raise ValueError("must be a Slack channel id (C0123456789), not its #name")
        return value

    def targets(self) -> dict[str, float]:
        """The targets set, in seconds of business time, by kind."""
        return {kind: parse_duration(value) for kind, value in (
            ("first_response", self.first_response), ("next_response", self.next_response),
            ("resolution", self.resolution)) if value is not None}

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        for item in value:
            if not USER_ID.fullmatch(item):
                raise ValueError(f"{item!r} is not a Slack user id (U0123456789)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as \"Europe/Paris\"") from exc
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return iso639(value)

    @field_validator("closed_reply", "greeting")
    @classmethod
    def _auto_text(cls, value: bool | str | dict[str, str]) -> bool | str | dict[str, str]:
        return check_texts(value)


def iso639(value: str) -> str:
    value = value.strip().lower()
    if not LANGUAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not a two-letter ISO 639-1 code such as \"en\"")
    return value


class RoutingRule(_Strict):
    """One `[[routing.rules]]` entry: every condition it sets must hold."""

    team: str
    connectors: list[str] = Field(default_factory=list)
    inboxes: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    customer_tags: list[str] = Field(default_factory=list)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        return [iso639(v) for v in value]


class RoutingSettings(_Strict):
    rules: list[RoutingRule] = Field(default_factory=list)


@dataclass(frozen=True)
class Team:
    name: str
    channel: str
    members: frozenset[str]
    timezone: str
    language: str
    hours: str | None = None  # its [hours.<name>] calendar; None: always open


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a text (Ž → z, É → e)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> set[str]:
    return set(_WORD.findall(fold(text)))


def inbox_key(value: str) -> str:
    """An inbox as rules compare it: no `whatsapp:`/`@` prefix, lower case."""
    value = value.strip().lower()
    for prefix in ("whatsapp:", "sms:", "@"):
        value = value.removeprefix(prefix)
    return value


def resolve_teams(teams: Mapping[str, TeamSettings], support_channel: str,
                  timezone: str) -> dict[str, Team]:
    """Every team by name, the default `support` team always among them."""
    out: dict[str, Team] = {}
    for name, table in {DEFAULT_TEAM: TeamSettings(), **teams}.items():
        channel = table.channel or (support_channel if name == DEFAULT_TEAM else "")
        out[name] = Team(name=name, channel=channel, members=frozenset(table.members),
                         timezone=table.timezone or timezone, language=table.language,
                         hours=table.hours)
    return out


def team_problems(teams: Mapping[str, TeamSettings], rules: Sequence[RoutingRule],
                  connectors: Collection[str], support_channel: str,
                  placeholders: Collection[str] = ()) -> list[tuple[str, str, str]]:
    """(key, message, fix) for each team or rule that cannot work."""
    out: list[tuple[str, str, str]] = []
    support = teams.get(DEFAULT_TEAM)
    seen: dict[str, str] = ({} if support is not None and support.channel
                            else {support_channel: DEFAULT_TEAM})
    for name, table in teams.items():
        key = f"teams.{name}"
        if not TEAM_NAME.fullmatch(name):
            out.append((key, "is not a team name", "use lower-case letters, digits, - and _"))
        if not table.channel and name != DEFAULT_TEAM:
            out.append((f"{key}.channel", "is missing",
                        f"add channel = \"C0123456789\" to [{key}]"))
        elif table.channel and table.channel not in placeholders \
                and not CHANNEL_ID.fullmatch(table.channel):
            out.append((f"{key}.channel", "does not look like a Slack channel id (C0123456789)",
                        "use the channel id from the channel's details, not its #name"))
        if table.channel and table.channel in seen:
            out.append((f"{key}.channel", f"is also the channel of team {seen[table.channel]}",
                        "give each team a channel of its own"))
        seen.setdefault(table.channel, name)
    known = {DEFAULT_TEAM, *teams}
    for i, rule in enumerate(rules):
        key = f"routing.rules[{i}]"
        if rule.team not in known:
            out.append((f"{key}.team", f"names an unknown team {rule.team!r}",
                        f"use one of: {', '.join(sorted(known))}, or add [teams.{rule.team}]"))
        for name in rule.connectors:
            if name not in connectors:
                out.append((f"{key}.connectors", f"names an unknown connector {name!r}",
                            f"use one of: {', '.join(sorted(connectors)) or '-'}"))
        if not (rule.connectors or rule.inboxes or rule.keywords or rule.languages
                or rule.customer_tags):
            out.append((key, "has no condition, so every conversation matches it",
                        "add connectors, inboxes, keywords, languages or customer_tags"))
    return out


class Routing:
    """Chooses the team of a customer's new conversation."""

    def __init__(self, teams: Mapping[str, Team], rules: Sequence[RoutingRule],
                 detect: Callable[[str, frozenset[str], str], frozenset[str]] | None = None,
                 ) -> None:
        self.teams = dict(teams)
        self.rules = list(rules)
        self.detect = detect  # (text, candidate languages, fallback) -> plausible languages
        self._languages = frozenset(lang for rule in rules for lang in rule.languages)
        self.uses_customer_tags = any(rule.customer_tags for rule in rules)
        self._by_channel = {team.channel: team for team in self.teams.values()}

    def cold(self) -> bool:
        """The detector is needed but not loaded yet (`warm` it in a thread)."""
        loaded = getattr(self.detect, "loaded", None)
        return bool(self._languages) and callable(loaded) and not loaded(self._languages)

    def warm(self) -> None:
        load = getattr(self.detect, "load", None)
        if callable(load):
            load(self._languages)

    @property
    def default(self) -> Team:
        return self.teams[DEFAULT_TEAM]

    def by_channel(self, channel: str | None) -> Team | None:
        return self._by_channel.get(channel or "")

    def language(self, item: InboundMessage) -> frozenset[str]:
        """The platform's hint first; else the languages the detector finds plausible, among
        those the rules name; else (no detector, no text) the default team's language."""
        if item.language:
            return frozenset({item.language.split("-")[0].lower()})
        if not self._languages or self.detect is None or not item.text.strip():
            return frozenset({self.default.language})
        return self.detect(item.text, self._languages, self.default.language)

    def choose(self, item: InboundMessage, customer_tags: frozenset[str] = frozenset(),
                 ) -> Team:
        said = words(item.text)
        inbox = inbox_key(item.inbox) if item.inbox else None
        language: frozenset[str] = frozenset()
        asked = False
        for rule in self.rules:
            if rule.connectors and item.connector not in rule.connectors:
                continue
            if rule.inboxes and (inbox is None
                                 or inbox not in {inbox_key(i) for i in rule.inboxes}):
                continue
            if rule.keywords and not said & {fold(k) for k in rule.keywords}:
                continue
            if rule.customer_tags and not customer_tags & {fold(t) for t in rule.customer_tags}:
                continue
            if rule.languages:
                if not asked:
                    language, asked = self.language(item), True
                if not language <= set(rule.languages):  # whichever it is, the rule takes it
                    continue
            team = self.teams.get(rule.team)
            if team is not None:
                return team
        return self.default
