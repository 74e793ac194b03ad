"""Response-time targets: each open conversation's first answer, next answer and resolution
due within the team's targets, counted in the team's business hours.

A keeper runs in every instance and, every `interval` seconds of real time, looks at the
store with the business clock:

1. starts the targets a conversation owes (a customer waiting since their first message after
   the last agent reply: `first_response` before any reply, else `next_response`; and a
   `resolution` from its opening or reopening), due when that much business time has passed;
2. settles them: an agent's reply (not a note, not an automatic answer) meets an answer target
   (late: missed, with the time it took); a close meets the resolution and cancels an answer
   no longer owed; pending or snoozed stops the clock (the business time left is kept) and
   open starts it again; at 80 % of the time the thread gets one reminder mentioning the
   assignee (else the team's `members`); when due, the target is missed and the team's
   `alerts_channel` gets one line.

Every change is conditional in the store (see `storage/targets.py`), so with several instances
each reminder, miss and alert happens exactly once, and timers are rows: a restart goes on
where it stopped.  A failed round (the database away) is logged and tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bridge.hours import Calendar
from bridge.loops import Rounds
from storage.base import Store
from vocab.events import Event, TargetMissed, TargetWarned
from vocab.models import OutboxItem
from vocab.targets import Active, Owed, TargetChange, TargetKind, TargetStart, TargetState

log = logging.getLogger(__name__)
WARN_AT = 0.8  # the share of a target's time after which the thread is reminded
STATE_KEY = ("targets", "since")  # targets start for waits from this instant on
_ANSWERS = (TargetKind.FIRST_RESPONSE, TargetKind.NEXT_RESPONSE)
_LIVE = (TargetState.RUNNING, TargetState.PAUSED)
FULL_EVERY = 60  # rounds between scans of every open conversation (else: the changed ones)
MARGIN = 10.0  # seconds a changed-since scan reaches back (clocks, slow commits)
STARTED_MAX = 100_000


@dataclass(frozen=True)
class TeamTargets:
    """One team's targets (seconds of business time by kind), calendar and alerts."""

    name: str
    seconds: Mapping[TargetKind, float]
    calendar: Calendar
    alerts_channel: str = ""
    members: tuple[str, ...] = ()


class TargetKeeper:
    def __init__(self, store: Store, teams: Mapping[str, TeamTargets],
                 channels: Mapping[str, str], default_team: str,
                 submit: Callable[[Sequence[OutboxItem]], None],
                 clock: Callable[[], float], interval: float = 1.0) -> None:
        self.store = store
        self.teams = dict(teams)
        self.channels = dict(channels)  # a Slack channel -> its team's name
        self.default_team = default_team
        self.submit = submit
        self.clock = clock
        self.interval = interval
        self.since: float | None = None
        self._rounds = 0
        self._scanned: float | None = None  # the business time of the last round
        self._started: set[tuple[int, str, float]] = set()  # waits this instance started
        self._loop = Rounds("targets", lambda: self.tick(), lambda: self.interval, log,
                            "response-time targets: a round failed")

    @property
    def needed(self) -> bool:
        return any(team.seconds for team in self.teams.values())

    async def start(self) -> None:
        if self.needed:
            await self._since()  # before any message this instance takes is judged
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _since(self) -> float:
        """Waits older than the first time targets ran are not judged (no flood of misses
        for the conversations open when the feature is switched on)."""
        if self.since is None:
            kept = await self.store.get_state(*STATE_KEY)
            if kept is None:
                kept = repr(self.clock())
                await self.store.set_state(*STATE_KEY, kept, self.clock())
            self.since = float(kept)
        return self.since

    def owner_team(self, channel: str | None) -> TeamTargets | None:
        return self.teams.get(self.channels.get(channel or "", self.default_team))

    async def tick(self) -> int:
        """One round; how many outbox rows it queued."""
        queued = 0
        since = await self._since()
        # Conversations changed since the last round (a margin for clocks and commits), and
        # every FULL_EVERY rounds all of them; each wait is started once per instance.
        full = self._rounds % FULL_EVERY == 0
        changed = 0.0 if full or self._scanned is None else self._scanned - MARGIN
        self._rounds += 1
        self._scanned = self.clock()
        for owed in await self.store.owed_targets(changed):
            team = self.owner_team(owed.slack_channel)
            if team is None:
                continue
            for plan in self._plans(owed, team, since):
                key = (plan.conversation_id, plan.kind.value, plan.started_at)
                if key in self._started:
                    continue
                queued += self._queued(await self.store.start_target(plan, self.clock()))
                if len(self._started) >= STARTED_MAX:
                    self._started.clear()  # only a cache: the unique index decides
                self._started.add(key)
        for item in await self.store.active_targets():
            team = self.teams.get(item.target.team)
            calendar = team.calendar if team is not None else Calendar.always()
            for move, events in moves(item, calendar, team, self.clock()):
                queued += self._queued(await self.store.change_target(move, self.clock(),
                                                                      events))
        return queued

    def _queued(self, items: Sequence[OutboxItem]) -> int:
        if items:
            self.submit(items)
        return len(items)

    def _plans(self, owed: Owed, team: TeamTargets, since: float) -> Iterable[TargetStart]:
        starts: list[tuple[TargetKind, float]] = []
        if owed.waiting_since is not None:
            kind = TargetKind.NEXT_RESPONSE if owed.answered else TargetKind.FIRST_RESPONSE
            starts.append((kind, owed.waiting_since))
        starts.append((TargetKind.RESOLUTION, owed.reopened_at or owed.created_at))
        for kind, at in starts:
            seconds = team.seconds.get(kind)
            begun = (owed.resolution_started if kind is TargetKind.RESOLUTION
                     else owed.answer_started)
            if seconds is None or at < since or (begun is not None and begun >= at):
                continue  # no target, before targets ran, or started already
            yield TargetStart(
                conversation_id=owed.conversation_id, team=team.name, kind=kind,
                assignee=owed.assignee, started_at=at,
                due_at=team.calendar.add_business_seconds(at, seconds),
                warn_at=team.calendar.add_business_seconds(at, seconds * WARN_AT),
                target_seconds=seconds)


def moves(item: Active, calendar: Calendar, team: TeamTargets | None,
          now: float) -> Iterable[tuple[TargetChange, tuple[Event, ...]]]:
    """What is to change about one target now (pure; the store applies it conditionally)."""
    t = item.target
    allowed = t.target_seconds or 0.0
    base = {"id": t.id, "conversation_id": t.conversation_id}
    answer = t.kind in _ANSWERS
    done_at = item.replied_at if answer else (
        item.closed_at if item.status == "closed" else None)
    if t.state is TargetState.MISSED:  # owed still: the late answer, or a close
        if done_at is not None:
            late = calendar.business_seconds(t.due_at or t.started_at, done_at)
            yield TargetChange(**base, expect=(TargetState.MISSED,),
                               state=TargetState.MISSED, met_at=done_at,
                               business_seconds=allowed + late, assignee=item.assignee), ()
        elif item.status == "closed":
            yield TargetChange(**base, expect=(TargetState.MISSED,),
                               state=TargetState.MISSED, settled=True), ()
        return
    if done_at is not None:
        left = (t.left_seconds if t.state is TargetState.PAUSED
                else calendar.business_seconds(done_at, t.due_at or done_at))
        late = t.state is TargetState.RUNNING and t.due_at is not None \
            and done_at > t.due_at
        took = allowed + calendar.business_seconds(t.due_at or done_at, done_at) \
            if late else allowed - (left or 0.0)
        yield TargetChange(**base, expect=_LIVE,
                           state=TargetState.MISSED if late else TargetState.MET,
                           met_at=done_at, missed_at=t.due_at if late else None,
                           business_seconds=max(0.0, took), assignee=item.assignee), ()
        return
    if item.status == "closed":  # an answer no longer owed
        yield TargetChange(**base, expect=_LIVE, state=TargetState.CANCELLED), ()
        return
    stopped = item.status in ("pending", "snoozed")
    since = item.status_at if item.status_at is not None else now
    if t.state is TargetState.PAUSED:
        if not stopped:
            left = t.left_seconds or 0.0
            yield TargetChange(
                **base, expect=(TargetState.PAUSED,), state=TargetState.RUNNING,
                due_at=calendar.add_business_seconds(since, left),
                warn_at=calendar.add_business_seconds(
                    since, max(0.0, left - allowed * (1 - WARN_AT)))), ()
        return
    due = t.due_at
    if due is not None and due <= (since if stopped else now):
        yield TargetChange(**base, expect=(TargetState.RUNNING,), state=TargetState.MISSED,
                           missed_at=due, business_seconds=allowed,
                           assignee=item.assignee), _alert(item, team)
        return
    if stopped:
        yield TargetChange(**base, expect=(TargetState.RUNNING,), state=TargetState.PAUSED,
                           left_seconds=calendar.business_seconds(since, due or since),
                           redraw=True), ()
        return
    if t.warned_at is None and t.warn_at is not None and t.warn_at <= now:
        members = team.members if team is not None else ()
        yield TargetChange(**base, expect=(TargetState.RUNNING,), state=TargetState.RUNNING,
                           warned_at=now, unwarned=True), (TargetWarned(
            target=t.kind.value, due_at=due or now, assignee=item.assignee,
            members=() if item.assignee else members),)


def _alert(item: Active, team: TeamTargets | None) -> tuple[Event, ...]:
    """The line a missed target puts in the team's alerts channel, if it has one."""
    target = item.target
    if team is None or not team.alerts_channel:
        return ()
    return (TargetMissed(target=target.kind.value, due_at=target.due_at or 0.0,
                         team=team.name, alerts_channel=team.alerts_channel,
                         assignee=item.assignee),)


def team_targets(teams: Mapping[str, tuple[dict[str, float], Calendar, str, Sequence[str]]],
                 ) -> dict[str, TeamTargets]:
    """From (targets by kind name, calendar, alerts channel, members) per team."""
    return {name: TeamTargets(name, {TargetKind(k): v for k, v in seconds.items()}, calendar,
                              alerts, tuple(members))
            for name, (seconds, calendar, alerts, members) in teams.items()}
