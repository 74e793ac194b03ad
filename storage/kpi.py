"""The KPIs (issue 24): every figure's definition, written once, computed from the stored history.

Definitions (the README's "KPIs" section repeats them).  A period is `[start, end)` in epoch
seconds; a group key is the conversation's channel (connector), team (the team whose Slack
channel holds it), agent, or day (local midnight to midnight), or nothing (the totals).

- A **customer message** is a `messages` row with direction `in`; an **agent response** is one
  with direction `out` and origin `person` (bot answers -- origin `auto`, `faq`, `survey` -- and
  notes, direction `note`, never count).  Both are counted when written inside the period.
- **Conversations opened**: created inside the period.  **Closed**: status changes to
  `closed` inside the period.  **Reopened**: status changes away from `closed` inside it.
- A conversation's messages split into **waits**: a wait starts with the customer's first
  message after an agent response (or the conversation's first) and ends with the next agent
  response.  The wait before the first response gives the **first response time**, every later
  one a **next response time**; a wait counts in the period its customer message was written,
  and only once answered.  The agent of a response time is who answered.
- **Business-hours** first response time: the same wait measured only inside the team's
  business hours (`BusinessHours`); without a calendar, every hour is a business hour.
- **Resolution time**: from the conversation's creation to a close inside the period (each
  close counts; a reopened and closed again conversation counts twice).
- **Targets met %**, per target kind: of the `response_targets` rows met or missed inside the
  period, the share met (rows still running, paused or cancelled do not count).
- **CSAT**: answered `csat` surveys (answered inside the period): average score, count and
  distribution (score -> answers).  **NPS**: answered `nps` surveys (0-10): % promoters (9-10)
  minus % detractors (0-6).
- **Backlog** (now, whatever the period): conversations open, open with no assignee, pending,
  snoozed; the oldest wait is the oldest customer message not yet answered in an open one.
- **Failed deliveries**: outbound messages written inside the period now in state `failed`.
  **Automatic answers**: outbound messages of origin `auto` or `faq` written inside the period.
  **FAQ handoffs**: conversations with an FAQ answer inside the period that an agent
  answered after it.
- **Invitations converted**: conversations opened inside the period by a message written after
  a proactive invitation (the web chat's `[[connectors.webchat.sites.invitations]]`: the
  conversation keeps the invitation's text); a message that joins an open conversation opens
  none and is not counted.
- Medians and 90th percentiles interpolate linearly between the two nearest values (as
  PostgreSQL's `percentile_cont`).  A statistic with nothing to compute it from is None (null);
  a count of nothing is 0.

Speed: each figure is one set-based statement (GROUP BY, a window for the waits) over indexes
of migration 0015; percentiles come from one sorted list per group.  No per-conversation query.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from storage.query import Tx, execute, rows

By = Literal["channel", "agent", "team", "day"]
TARGET_KINDS = ("first_response", "next_response", "resolution")
AGENT = "m.direction = 'out' AND m.origin = 'person'"


class BusinessHours(Protocol):
    """A team's calendar: its business intervals `(open, close)` (epoch seconds, sorted, not
    overlapping) that meet `[start, end)`.  Issue 20's calendar provides this."""

    def intervals(self, team: str, start: float, end: float) -> Sequence[tuple[float, float]]: ...


@dataclass(frozen=True)
class KpiQuery:
    start: float
    end: float
    now: float
    by: By | None = None
    team: str | None = None  # only this team's conversations
    channels: dict[str, str] = field(default_factory=dict)  # Slack channel -> team
    days: Sequence[float] = ()  # by day: the local midnights from the first day to `end`
    oldest: int = 10  # how many of the longest-waiting conversations to list


@dataclass(frozen=True)
class Stat:
    median: float | None
    p90: float | None
    count: int

    def as_json(self) -> dict[str, Any]:
        return {"median": self.median, "p90": self.p90, "count": self.count}


@dataclass
class Figures:
    conversations_opened: int = 0
    conversations_closed: int = 0
    conversations_reopened: int = 0
    customer_messages: int = 0
    agent_messages: int = 0
    first_response_seconds: Stat = field(default_factory=lambda: stat([]))
    first_response_business_seconds: Stat = field(default_factory=lambda: stat([]))
    next_response_seconds: Stat = field(default_factory=lambda: stat([]))
    resolution_seconds: Stat = field(default_factory=lambda: stat([]))
    targets_met_percent: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(TARGET_KINDS))
    csat: dict[str, Any] = field(
        default_factory=lambda: {"average": None, "count": 0, "distribution": {}})
    nps: dict[str, Any] = field(default_factory=lambda: {"score": None, "count": 0})
    backlog: dict[str, Any] = field(default_factory=lambda: {
        "open": 0, "unassigned": 0, "pending": 0, "snoozed": 0, "oldest_wait_seconds": None})
    failed_deliveries: int = 0
    automatic_answers: int = 0
    faq_handoffs: int = 0
    invitations_converted: int = 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in vars(self).items():
            out[name] = value.as_json() if isinstance(value, Stat) else value
        return out


@dataclass(frozen=True)
class Waiting:
    """An open conversation waiting for an answer (the dashboard links its thread)."""

    conversation_id: int
    connector: str
    slack_channel: str | None
    slack_thread_ts: str | None
    assignee: str | None
    waiting_since: float


@dataclass
class KpiReport:
    start: float
    end: float
    totals: Figures
    groups: dict[str, Figures]  # key value (channel, agent, team, day index as text) -> figures
    oldest: list[Waiting]


def percentile(ordered: Sequence[float], p: float) -> float | None:
    if not ordered:
        return None
    pos = p * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stat(values: list[float]) -> Stat:
    values.sort()
    return Stat(percentile(values, 0.5), percentile(values, 0.9), len(values))


def business_seconds(hours: BusinessHours | None, team: str, start: float,
                     end: float) -> float:
    if hours is None:
        return end - start
    total = 0.0
    for a, b in hours.intervals(team, start, end):
        total += max(0.0, min(b, end) - max(a, start))
    return total


class _Cumulative:
    """Business seconds since the period's start at any instant, by bisection over one team's
    intervals: a wait's business time is `at(end) - at(start)`, one lookup each."""

    def __init__(self, spans: Sequence[tuple[float, float]]) -> None:
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]
        self.before: list[float] = []
        acc = 0.0
        for a, b in spans:
            self.before.append(acc)
            acc += b - a

    def at(self, t: float) -> float:
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.before[i] + min(t, self.ends[i]) - self.starts[i]


# -- the statements ----------------------------------------------------------------------------

def _window(q: KpiQuery, time: str, agent: str) -> tuple[str, list[Any]]:
    """The group key (see `_key`) and its parameters followed by the period's start and end."""
    params: list[Any] = []
    key = _key(q, time, agent, params)
    return key, [*params, q.start, q.end]


def _key(q: KpiQuery, time: str, agent: str, params: list[Any]) -> str:
    """The SQL expression of the group key for a row of conversation `c` written at `time`."""
    if q.by == "channel":
        return "c.connector"
    if q.by == "agent":
        return f"COALESCE({agent}, '')"
    if q.by == "team":
        if not q.channels:
            return "''"
        whens = []
        for channel, team in q.channels.items():
            whens.append("WHEN ? THEN ?")
            params.extend((channel, team))
        return f"CASE c.slack_channel {' '.join(whens)} ELSE '' END"
    if q.by == "day":
        if len(q.days) < 2:
            return "0"
        whens = []
        for index, midnight in enumerate(q.days[1:]):
            whens.append(f"WHEN {time} < ? THEN {index}")
            params.append(midnight)
        return f"CASE {' '.join(whens)} ELSE {len(q.days) - 1} END"
    return "''"


def _team_filter(q: KpiQuery, params: list[Any], column: str = "c.slack_channel") -> str:
    if q.team is None:
        return ""
    mine = [channel for channel, team in q.channels.items() if team == q.team] or ["-"]
    params.extend(mine)
    return f" AND {column} IN ({', '.join('?' * len(mine))})"


def kpis(q: KpiQuery, hours: BusinessHours | None = None) -> Tx[KpiReport]:
    totals = Figures()
    groups: dict[str, Figures] = defaultdict(Figures)

    def both(key: Any) -> list[Figures]:
        return [totals] if q.by is None else [totals, groups[str(key)]]

    # Conversations opened.
    key, params = _window(q, "c.created_at", "c.assignee")
    found = yield from rows(
        f"SELECT {key} AS k, COUNT(*) AS n,"
        " SUM(CASE WHEN c.invitation IS NOT NULL THEN 1 ELSE 0 END) AS invited"
        " FROM conversations c"
        f" WHERE c.created_at >= ? AND c.created_at < ?{_team_filter(q, params)} GROUP BY 1",
        *params)
    for r in found:
        for f in both(r["k"]):
            f.conversations_opened += int(r["n"])
            f.invitations_converted += int(r["invited"] or 0)

    # Closes and resolution times (one duration per close), then reopenings (counted).
    key, params = _window(q, "ch.created_at", "c.assignee")
    found = yield from rows(
        f"SELECT {key} AS k, ch.created_at - c.created_at AS d"
        " FROM conversation_changes ch JOIN conversations c ON c.id = ch.conversation_id"
        " WHERE ch.kind = 'status' AND ch.created_at >= ? AND ch.created_at < ?"
        f"{_team_filter(q, params)} AND ch.new_value = 'closed'", *params)
    resolution: dict[str, list[float]] = defaultdict(list)
    for k_raw, d in found:
        resolution[str(k_raw)].append(float(d))
    for k, durations in resolution.items():
        for f in both(k):
            f.conversations_closed += len(durations)
    _stats(q, totals, groups, resolution, "resolution_seconds")
    key, params = _window(q, "ch.created_at", "c.assignee")
    joined = ""
    if q.by is not None or q.team is not None:
        joined = " JOIN conversations c ON c.id = ch.conversation_id"
    found = yield from rows(
        f"SELECT {key} AS k, COUNT(*) AS n FROM conversation_changes ch{joined}"
        " WHERE ch.kind = 'status' AND ch.created_at >= ? AND ch.created_at < ?"
        f"{_team_filter(q, params)} AND ch.old_value = 'closed'"
        " AND COALESCE(ch.new_value, '') <> 'closed'"
        " GROUP BY 1", *params)
    for r in found:
        for f in both(r["k"]):
            f.conversations_reopened += int(r["n"])

    # Messages written in the period.
    key, params = _window(q, "m.created_at", "m.author_slack_user")
    if q.by == "channel":
        key = "m.connector"
    join = q.by == "team" or q.team is not None
    found = yield from rows(
        f"SELECT {key} AS k,"
        " SUM(CASE WHEN m.direction = 'in' THEN 1 ELSE 0 END) AS customer,"
        f" SUM(CASE WHEN {AGENT} THEN 1 ELSE 0 END) AS agent,"
        " SUM(CASE WHEN m.direction = 'out' AND m.state = 'failed' THEN 1 ELSE 0 END) AS failed,"
        " SUM(CASE WHEN m.direction = 'out' AND m.origin IN ('auto', 'faq') THEN 1 ELSE 0 END)"
        " AS auto FROM messages m"
        + (" JOIN conversations c ON c.id = m.conversation_id" if join else "") +
        f" WHERE m.created_at >= ? AND m.created_at < ?{_team_filter(q, params)} GROUP BY 1",
        *params)
    for r in found:
        for f in both(r["k"]):
            f.customer_messages += int(r["customer"] or 0)
            f.agent_messages += int(r["agent"] or 0)
            f.failed_deliveries += int(r["failed"] or 0)
            f.automatic_answers += int(r["auto"] or 0)

    # FAQ answers an agent answered after.
    key, params = _window(q, "m.created_at", "c.assignee")
    found = yield from rows(
        f"SELECT {key} AS k, COUNT(DISTINCT m.conversation_id) AS n"
        " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.origin = 'faq' AND m.direction = 'out' AND m.created_at >= ?"
        f" AND m.created_at < ?{_team_filter(q, params)} AND EXISTS (SELECT 1 FROM messages a"
        " WHERE a.conversation_id = m.conversation_id AND a.id > m.id AND a.direction = 'out'"
        " AND a.origin = 'person') GROUP BY 1", *params)
    for r in found:
        for f in both(r["k"]):
            f.faq_handoffs += int(r["n"])

    yield from _waits(q, hours, totals, groups)
    yield from _targets(q, totals, groups)
    yield from _surveys(q, totals, groups)
    oldest = yield from _backlog(q, totals, groups)
    return KpiReport(q.start, q.end, totals, dict(groups) if q.by else {}, oldest)


def _stats(q: KpiQuery, totals: Figures, groups: dict[str, Figures],
           values: dict[str, list[float]], name: str) -> None:
    everything: list[float] = []
    for k, some in values.items():
        everything.extend(some)
        if q.by is not None:
            setattr(groups[k], name, stat(some))
    setattr(totals, name, stat(everything))


def _waits(q: KpiQuery, hours: BusinessHours | None, totals: Figures,
           groups: dict[str, Figures]) -> Tx[None]:
    """First and next response times, in one pass over the counted messages of the
    conversations active in the period, in the order of the covering index
    `messages_kpi_waits` (no sort): a wait opens at a customer message when none is open and
    closes at the next agent response."""
    params: list[Any] = []
    # By day or team, a wait's key is found below at its customer message, not in SQL for
    # every message (the same boundaries as `_key`).
    late = q.by in ("agent", "day", "team")
    key = "''" if late else _key(q, "m.created_at", "m.author_slack_user", params)
    bounds = list(q.days[1:])
    params += [q.end, q.start]
    found = yield from rows(
        f"SELECT {key} AS k, m.conversation_id AS cid, m.direction AS d, m.created_at AS t,"
        " m.author_slack_user AS who, c.slack_channel AS channel"
        " FROM conversations c JOIN messages m ON m.conversation_id = c.id"
        f" WHERE c.created_at < ? AND c.updated_at >= ?{_team_filter(q, params)}"
        f" AND (m.direction = 'in' OR ({AGENT})) ORDER BY m.conversation_id, m.id", *params)
    first: dict[str, list[float]] = defaultdict(list)
    first_business: dict[str, list[float]] = defaultdict(list)
    later: dict[str, list[float]] = defaultdict(list)
    calendars: dict[str, _Cumulative] = {}
    current, asked, answers, asked_key = -1, 0.0, 0, ""
    waiting = False
    start, end = q.start, q.end
    for k_raw, cid, d, t, who, channel in found:  # positional: the hot loop of the KPIs
        if cid != current:
            current, answers, waiting = cid, 0, False
        if d == "in":
            if not waiting:
                waiting, asked, asked_key = True, t, str(k_raw)
                if q.by == "day":
                    asked_key = str(bisect.bisect_right(bounds, t))
                elif q.by == "team":
                    asked_key = q.channels.get(str(channel), "")
            continue
        if waiting and start <= asked < end:
            k = str(who or "") if q.by == "agent" else asked_key
            wait = t - asked
            if answers:
                later[k].append(wait)
            else:
                first[k].append(wait)
                if hours is None:
                    first_business[k].append(wait)
                else:
                    team = q.channels.get(str(channel), "")
                    cal = calendars.get(team)
                    if cal is None:
                        # A week past the end: a wait asked before the end may end later.
                        cal = calendars[team] = _Cumulative(
                            hours.intervals(team, start, end + 7 * 86400))
                    first_business[k].append(cal.at(t) - cal.at(asked))
        waiting = False
        answers += 1
    _stats(q, totals, groups, first, "first_response_seconds")
    _stats(q, totals, groups, first_business, "first_response_business_seconds")
    _stats(q, totals, groups, later, "next_response_seconds")


def _targets(q: KpiQuery, totals: Figures, groups: dict[str, Figures]) -> Tx[None]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for state, column in (("met", "met_at"), ("missed", "missed_at")):
        params: list[Any] = []
        key = _target_key(q, f"t.{column}", params)
        params += [state, q.start, q.end]
        team = "" if q.team is None else " AND t.team = ?"
        if q.team is not None:
            params.append(q.team)
        join = " JOIN conversations c ON c.id = t.conversation_id" if q.by == "channel" else ""
        found = yield from rows(
            f"SELECT {key} AS k, t.kind AS kind, COUNT(*) AS n FROM response_targets t{join}"
            " WHERE t.state = ?"
            f" AND t.{column} >= ? AND t.{column} < ?{team} GROUP BY 1, 2", *params)
        for r in found:
            for k in ([""] if q.by is None else ["", str(r["k"])]):
                counts[(k, str(r["kind"]))][0 if state == "met" else 1] += int(r["n"])
    for (k, kind), (met, missed) in counts.items():
        if kind in TARGET_KINDS:
            f = totals if k == "" else groups[k]
            f.targets_met_percent[kind] = 100.0 * met / (met + missed)


def _target_key(q: KpiQuery, time: str, params: list[Any]) -> str:
    if q.by == "team":
        return "t.team"
    if q.by == "agent":
        return "COALESCE(t.assignee, '')"
    return _key(q, time, "t.assignee", params)


def _surveys(q: KpiQuery, totals: Figures, groups: dict[str, Figures]) -> Tx[None]:
    params: list[Any] = []
    if q.by == "team":
        key = "s.team"
    elif q.by == "agent":
        key = "COALESCE(s.assignee, '')"
    elif q.by == "channel":
        key = "s.connector"
    else:
        key = _key(q, "s.answered_at", "s.assignee", params)
    params += [q.start, q.end]
    team = ""
    if q.team is not None:
        team = " AND s.team = ?"
        params.append(q.team)
    found = yield from rows(
        f"SELECT {key} AS k, s.kind AS kind, s.score AS score, COUNT(*) AS n FROM surveys s"
        " WHERE s.state = 'answered' AND s.answered_at >= ? AND s.answered_at < ?"
        f" AND s.score IS NOT NULL{team} GROUP BY 1, 2, 3", *params)
    scores: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for r in found:
        for k in ([""] if q.by is None else ["", str(r["k"])]):
            got = scores[(k, str(r["kind"]))]
            got[int(r["score"])] = got.get(int(r["score"]), 0) + int(r["n"])
    for (k, kind), dist in scores.items():
        f = totals if k == "" else groups[k]
        count = sum(dist.values())
        if kind == "csat":
            f.csat = {"average": sum(s * n for s, n in dist.items()) / count, "count": count,
                      "distribution": {str(s): dist[s] for s in sorted(dist)}}
        elif kind == "nps":
            promoters = sum(n for s, n in dist.items() if s >= 9)
            detractors = sum(n for s, n in dist.items() if s <= 6)
            f.nps = {"score": 100.0 * (promoters - detractors) / count, "count": count}


def _backlog(q: KpiQuery, totals: Figures, groups: dict[str, Figures]) -> Tx[list[Waiting]]:
    """Now: status counts, and each open conversation's oldest unanswered customer message."""
    params: list[Any] = []
    key = _key(q, "c.created_at", "c.assignee", params) if q.by != "day" else "''"
    tail: list[Any] = []
    team_sql = _team_filter(q, tail)
    found = yield from rows(
        f"SELECT {key} AS k, c.id AS id, c.status AS status, c.assignee AS assignee,"
        " c.connector AS connector, c.slack_channel AS channel, c.slack_thread_ts AS thread,"
        " CASE WHEN c.status = 'open' THEN (SELECT MIN(m.created_at) FROM messages m"
        " WHERE m.conversation_id = c.id AND m.direction = 'in' AND m.id > COALESCE("
        "(SELECT MAX(o.id) FROM messages o WHERE o.conversation_id = c.id"
        f" AND o.direction = 'out' AND o.origin = 'person'), 0)) END AS since"
        " FROM conversations c WHERE c.status IN ('open', 'pending', 'snoozed')"
        f" AND c.merged_into IS NULL{team_sql}", *params, *tail)
    waiting: list[Waiting] = []
    for r in found:
        figures = [totals] if q.by in (None, "day") else [totals, groups[str(r["k"])]]
        since = None if r["since"] is None else float(r["since"])
        for f in figures:
            b = f.backlog
            status = str(r["status"])
            b[status] += 1
            if status == "open" and r["assignee"] is None:
                b["unassigned"] += 1
            if since is not None:
                wait = max(0.0, q.now - since)
                if b["oldest_wait_seconds"] is None or wait > b["oldest_wait_seconds"]:
                    b["oldest_wait_seconds"] = wait
        if since is not None:
            waiting.append(Waiting(int(r["id"]), str(r["connector"]), r["channel"], r["thread"],
                                   r["assignee"], since))
    waiting.sort(key=lambda w: (w.waiting_since, w.conversation_id))
    return waiting[:q.oldest]


def claim_digest(key: str, take: bool, now: float) -> Tx[bool]:
    """Take (or give back) the posting of one digest: True for the one caller that took it."""
    if not take:
        yield from execute("DELETE FROM connector_state WHERE connector = 'reports' AND key = ?",
                           key)
        return True
    done = yield from execute(
        "INSERT INTO connector_state (connector, key, value, updated_at) VALUES ('reports', ?,"
        " 'posted', ?) ON CONFLICT DO NOTHING", key, now)
    return done == 1
