"""What the crash tests count in Slack: posts made twice, conversations split into two threads,
and the kill moments they are run at."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bridge.standins import SlackStandin

MARKER = re.compile(r"\b[ca]m-\d+-\d{3}\b")
CUSTOMER = re.compile(r"\bcm-(\d+)-\d{3}\b")


@dataclass(frozen=True)
class Moment:
    """When the kill comes: once `ready(customer acked, agent acked, parents posted, pending)`."""

    name: str
    ready: Callable[[int, int, int, int], bool]
    describe: str


MOMENTS = (
    # Parents are being posted: the first thread is there, the others are in flight.
    Moment("early", lambda c, a, parents, p: parents >= 1, "the first parent posted"),
    Moment("mid", lambda c, a, parents, p: c >= 60 and a >= 18 and p >= 10,
           "60 customer and 18 agent messages acknowledged, 10 rows pending"),
    Moment("late", lambda c, a, parents, p: c >= 180 and a >= 60 and p >= 10,
           "180 customer and 60 agent messages acknowledged, 10 rows pending"),
)


def slack_markers(slack: SlackStandin) -> list[str]:
    return [m for msg in slack.messages for m in MARKER.findall(str(msg["text"]))]


def repeated_posts(slack: SlackStandin) -> dict[str, int]:
    """Markers posted into Slack more than once, with how often."""
    return {m: n for m, n in Counter(slack_markers(slack)).items() if n > 1}


def split_threads(slack: SlackStandin, channel: str) -> dict[int, int]:
    """Chats whose customer messages started more than one thread (parent), with how many."""
    parents = Counter(int(found.group(1)) for msg in slack.parents(channel)
                      for found in [CUSTOMER.search(str(msg["text"]))] if found)
    return {chat: n for chat, n in parents.items() if n > 1}
