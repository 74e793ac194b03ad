"""What the ownership and status tests share: a second agent, the parent's context line, the
thread's lines and the agents' private notes."""

from __future__ import annotations

from typing import Any

from tests.conftest import CHANNEL, Harness

OTHER = "U0AGENT2"


def add_other(h: Harness) -> None:
    h.slack.add_user(OTHER, display_name="Sam", real_name="Sam Lee")


async def started(h: Harness, chat: int = 4242) -> str:
    assert await h.customer_says(chat, "My parcel is late", first_name="Ann") == 200
    return await h.thread_of(chat)


def parent(h: Harness, thread: str) -> dict[str, Any]:
    [msg] = [m for m in h.slack.parents(CHANNEL) if m["ts"] == thread]
    return msg


def context(h: Harness, thread: str) -> str:
    [ctx] = [b for b in parent(h, thread)["blocks"] if b["type"] == "context"]
    return str(ctx["elements"][0]["text"])


def elements(h: Harness, thread: str) -> list[dict[str, Any]]:
    [actions] = [b for b in parent(h, thread)["blocks"] if b["type"] == "actions"]
    return list(actions["elements"])


def lines(h: Harness, thread: str) -> list[str]:
    """The thread's replies (notices and customer messages), in order."""
    return [str(m["text"]) for m in h.slack.thread(CHANNEL, thread)[1:]]


def privately(h: Harness, user: str) -> list[str]:
    return [str(e["text"]) for e in h.slack.ephemerals if e["user"] == user]
