"""Canned replies (issue 22): ready answers an agent fills, previews and sends as their own.

Where they live: team replies in files under `[canned] dir` (one Markdown file per reply, a
header between `---` lines: `name`, `title`, `team` (omitted: everyone), `tags`, `attachments`),
and replies saved from Slack in the store (personal, or shared with the thread's team).  When
names clash, the nearest wins: the agent's own, then their team's saved one, then the team's
file, then a file for everyone.

Every text is a template of the one syntax (`bridge/templates.py`, Jinja2's sandbox) and sees
only these variables (plain dicts, nothing of ours):

    customer.name, customer.first_name, customer.fields.<key> (also fields.<key>)
    agent.name          the Slack display name the customer sees
    conversation.id
    team.name           the team whose channel the thread is in
    hours.next_open     the team's next opening time (given by `NextOpen`, when wired)
    extra               what the agent typed after `!canned <name>` (else appended)

A value the bridge does not know is left out, so the template's `default(...)` applies or the
agent is told it is missing; it is never sent as an empty hole.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import yaml
from jinja2 import meta
from rapidfuzz import fuzz, process

from bridge.auto_texts import when
from bridge.templates import TemplateError, compile_text
from storage.base import CannedStore, SaveOutcome

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
FIELD = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_BODY = 4000  # characters of a reply's text (a Slack message shows 4,000)
MAX_FIELD = 500
HEADER_KEYS = frozenset({"name", "title", "team", "tags", "attachments"})
# `(team, now)` -> the team's next opening time as agents write it ("Monday 9:00"), or None
# when it is open around the clock or unknown.  Wired by the composition root to the
# business-hours calendar (issue 20).
NextOpen = Callable[[str, float], str | None]
Source = Literal["personal", "team", "file"]


class Hours(Protocol):
    """A team's business-hours calendar (bridge/hours.py's `Calendar`)."""

    zone: ZoneInfo

    def next_open(self, t: float) -> float | None: ...


@dataclass(frozen=True)
class CannedReply:
    name: str
    title: str
    body: str  # a template, in Slack's mrkdwn
    source: Source
    team: str | None = None  # None: every team
    tags: tuple[str, ...] = ()
    attachments: tuple[Path, ...] = ()
    owner: str | None = None  # who saved it (not for files)

    @property
    def where(self) -> str:
        if self.source == "personal":
            return "yours"
        if self.source == "team":
            return f"team {self.team}, saved by <@{self.owner}>"
        return f"team {self.team}" if self.team else "everyone"


class CannedFileError(ValueError):
    """A reply file that cannot be used: `str()` says what and how to fix it."""

    def __init__(self, path: Path, message: str, fix: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message, self.fix = path, message, fix


_BOLD = re.compile(r"\*\*(.+?)\*\*")  # not __x__: `__class__` would turn into `_class_`
_STRIKE = re.compile(r"~~(.+?)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def markdown_to_mrkdwn(text: str) -> str:
    """The Markdown a file is written in, as an agent would type it in Slack (which each
    channel's formatting then converts as it converts any reply)."""
    text = _LINK.sub(lambda m: f"<{m[2]}|{m[1]}>", text)
    text = _BOLD.sub(lambda m: f"*{m[1]}*", text)
    return _STRIKE.sub(lambda m: f"~{m[1]}~", text)


def parse_file(path: Path, root: Path, teams: Sequence[str] | None = None) -> CannedReply:
    """One reply file; `CannedFileError` naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CannedFileError(path, f"cannot be read: {exc}", "save it as UTF-8 text") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in [x.strip() for x in lines[1:]]:
        raise CannedFileError(path, "no header", "start the file with a `---` line, the "
                              "header (name: ..., title: ...), and another `---` line")
    end = 1 + [x.strip() for x in lines[1:]].index("---")
    try:
        header = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise CannedFileError(path, f"header is not valid YAML: {exc}",
                              "write one `key: value` per line") from None
    if not isinstance(header, dict):
        raise CannedFileError(path, "header is not a list of keys", "write `name: ...`")
    unknown = sorted(str(k) for k in header if k not in HEADER_KEYS)
    if unknown:
        raise CannedFileError(path, f"unknown header key {', '.join(unknown)}",
                              f"use only {', '.join(sorted(HEADER_KEYS))}")
    name = str(header.get("name") or path.stem).strip().lower()
    if not NAME.fullmatch(name):
        raise CannedFileError(path, f"name {name!r} is not a reply name",
                              "use lowercase letters, digits, `_`, `-` or `.` (64 at most)")
    team = header.get("team")
    if team is not None and not isinstance(team, str):
        raise CannedFileError(path, "`team` is not a team's name", "write `team: billing`")
    team = team or None
    if team is not None and teams is not None and team not in teams:
        raise CannedFileError(path, f"team {team!r} is not configured",
                              f"use one of {', '.join(teams)}, or omit `team` for everyone")
    tags = _words(path, header, "tags")
    attachments: list[Path] = []
    for item in _words(path, header, "attachments"):
        found = (path.parent / str(item)).resolve()
        if not found.is_relative_to(root.resolve()) or not found.is_file():
            raise CannedFileError(path, f"attachment {item!r} is not a file under {root}",
                                  "give a path relative to the file, inside the canned dir")
        attachments.append(found)
    body = markdown_to_mrkdwn("\n".join(lines[end + 1:]).strip())
    if not body and not attachments:
        raise CannedFileError(path, "no text below the header", "write the reply below `---`")
    try:
        compile_text(body)
    except TemplateError as exc:
        raise CannedFileError(path, str(exc), "fix the {{ ... }} placeholders") from None
    return CannedReply(name=name, title=str(header.get("title") or name), body=body,
                       source="file", team=team, tags=tuple(tags),
                       attachments=tuple(attachments))


def _words(path: Path, header: dict[str, object], key: str) -> list[str]:
    """A header list: `[a, b]`, or one string (tags: space-separated)."""
    value = header.get(key) or []
    if isinstance(value, str):
        return value.split() if key == "tags" else [value]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise CannedFileError(path, f"`{key}` is not a list", f"write `{key}: [first, second]`")


def load_dir(directory: Path, teams: Sequence[str] | None = None,
             ) -> tuple[list[CannedReply], list[CannedFileError]]:
    """Every `*.md` under `directory` (subfolders too): the replies and the problems."""
    replies: list[CannedReply] = []
    problems: list[CannedFileError] = []
    if not directory.is_dir():
        return [], [CannedFileError(directory, "is not a directory",
                                    "create it, or point [canned] dir at the replies")]
    seen: dict[tuple[str, str | None], Path] = {}
    for path in sorted(directory.rglob("*.md")):
        try:
            reply = parse_file(path, directory, teams)
        except CannedFileError as exc:
            problems.append(exc)
            continue
        key = (reply.name, reply.team)
        if key in seen:
            problems.append(CannedFileError(path, f"name {reply.name!r} is also used by "
                                            f"{seen[key]}", "give each reply its own name"))
            continue
        seen[key] = path
        replies.append(reply)
    return replies, problems


@dataclass(frozen=True)
class Context:
    """What a reply is filled with."""

    customer_name: str
    fields: Mapping[str, str]
    agent_name: str
    conversation_id: int
    team: str | None
    extra: str = ""


def first_name(name: str) -> str:
    words = name.split()
    return words[0] if words else ""


@dataclass
class CannedLibrary:
    store: CannedStore
    files: Sequence[CannedReply] = ()
    next_open: NextOpen | None = None
    clock: Callable[[], float] = time.time
    _by_team: dict[str | None, list[CannedReply]] = field(default_factory=dict)

    @staticmethod
    def scopes(user: str, team: str | None) -> list[str]:
        return [f"user:{user}", *([f"team:{team}"] if team else [])]

    async def available(self, user: str, team: str | None) -> list[CannedReply]:
        """What `user` may use in a thread of `team`, nearest first on a name clash."""
        found: dict[str, CannedReply] = {}
        for stored in await self.store.canned_replies(self.scopes(user, team)):
            personal = stored.scope.startswith("user:")
            reply = CannedReply(name=stored.name, title=stored.title or stored.name,
                                body=stored.body, source="personal" if personal else "team",
                                team=None if personal else team, owner=stored.owner)
            if personal or reply.name not in found:
                found[reply.name] = reply
        for reply in self.files:
            if reply.team == team:
                found.setdefault(reply.name, reply)
        for reply in self.files:
            if reply.team is None:
                found.setdefault(reply.name, reply)
        return sorted(found.values(), key=lambda r: r.name)

    async def find(self, user: str, team: str | None, name: str) -> CannedReply | None:
        for reply in await self.available(user, team):
            if reply.name == name.lower():
                return reply
        return None

    async def search(self, user: str, team: str | None, query: str,
                     limit: int = 10) -> list[CannedReply]:
        """Fuzzy search over names, titles, tags and text; everything when `query` is empty."""
        replies = await self.available(user, team)
        query = query.strip().lower()
        if not query:
            return replies[:limit]
        choices = {i: f"{r.name} {r.title} {' '.join(r.tags)} {r.body}".lower()
                   for i, r in enumerate(replies)}
        ranked = process.extract(query, choices, scorer=fuzz.WRatio, limit=limit,
                                 score_cutoff=45)
        return [replies[int(key)] for _, _, key in ranked]

    def variables(self, ctx: Context) -> dict[str, object]:
        customer: dict[str, object] = {"fields": dict(ctx.fields)}
        if ctx.customer_name:
            customer["name"] = ctx.customer_name
            customer["first_name"] = first_name(ctx.customer_name)
        found: dict[str, object] = {
            "customer": customer, "fields": dict(ctx.fields),
            "conversation": {"id": ctx.conversation_id}, "extra": ctx.extra,
            "agent": {"name": ctx.agent_name} if ctx.agent_name else {},
            "team": {"name": ctx.team} if ctx.team else {},
        }
        hours: dict[str, object] = {}
        if self.next_open is not None and ctx.team:
            opening = self.next_open(ctx.team, self.clock())
            if opening:
                hours["next_open"] = opening
        found["hours"] = hours
        return found

    def fill(self, reply: CannedReply, ctx: Context) -> str:
        """The filled text; `TemplateError` (a missing variable, something the sandbox
        refuses) for the agent to read.  `extra` goes where the text puts `{{ extra }}`, or
        below it."""
        text = compile_text(reply.body)
        filled = text.render(self.variables(ctx))
        uses_extra = "extra" in meta.find_undeclared_variables(text._env.parse(reply.body))
        if ctx.extra and not uses_extra:
            filled = f"{filled}\n\n{ctx.extra}" if filled else ctx.extra
        return filled

    async def save(self, user: str, team: str | None, name: str, title: str, body: str,
                   ) -> SaveOutcome:
        """Save a personal reply (`team` None) or one for `team`."""
        scope = f"team:{team}" if team else f"user:{user}"
        return await self.store.save_canned(scope, name, title, body, user, self.clock())

    async def delete(self, user: str, team: str | None, name: str) -> str | None:
        return await self.store.delete_canned(self.scopes(user, team), name, user)


def next_open_from(calendar_of: Callable[[str], Hours | None]) -> NextOpen:
    """`{{ hours.next_open }}` from the teams' business-hours calendars (bridge/hours.py):
    "Monday 9:00" within a week, else the date, in the calendar's zone; nothing for a team
    that is always open."""
    def next_open(team: str, now: float) -> str | None:
        calendar = calendar_of(team)
        at = None if calendar is None else calendar.next_open(now)
        return None if calendar is None or at is None else when(at, calendar.zone, "en", now)
    return next_open


def check_body(body: str) -> str | None:
    """Why a text cannot be saved as a reply, or None."""
    if not body.strip():
        return "the text is empty"
    if len(body) > MAX_BODY:
        return f"the text is longer than {MAX_BODY} characters"
    try:
        compile_text(body)
    except TemplateError as exc:
        return str(exc)
    return None
