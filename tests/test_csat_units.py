"""Surveys' pure parts (issue 23): number replies, settings and their per-team override,
Telegram's callback_query parsing and inline keyboard, Messenger's quick replies, and the
Telegram stand-in refusing what the Bot API refuses."""

from __future__ import annotations

import json

import aiohttp
import pytest
from pydantic import ValidationError

from bridge.csat_settings import CsatOverride, CsatSettings
from bridge.standins.telegram import TelegramStandin
from bridge.surveys import parse_score
from connectors.base import Malformed
from connectors.messenger.connector import quick_replies
from connectors.telegram.connector import keyboard
from connectors.telegram.parse import parse_update
from vocab.models import Choice, Choices, ConversationId, MessageId, OutboundMessage


@pytest.mark.parametrize("text, scale, score", [
    ("4", "1-5", 4), (" 5 ", "1-5", 5), ("4/5", "1-5", 4), ("3!", "1-5", 3), ("0", "1-5", None),
    ("6", "1-5", None), ("10", "0-10", 10), ("0", "0-10", 0), ("11", "0-10", None),
    ("🙂", "emoji", 4), ("😞", "emoji", 1), ("2", "emoji", 2), ("4 stars", "1-5", None),
    ("I waited 3 days", "1-5", None), ("", "1-5", None), ("٣", "1-5", 3),
])
def test_number_replies(text: str, scale: str, score: int | None) -> None:
    assert parse_score(text, scale) == score


def test_team_override_and_bad_templates() -> None:
    base = CsatSettings(enabled=False, low_score=2)
    team = CsatOverride(enabled=True, scale="emoji")
    merged = team.over(base)
    assert (merged.enabled, merged.scale, merged.low_score) == (True, "emoji", 2)
    with pytest.raises(ValidationError, match="not a valid template"):
        CsatSettings(question="How did {{ agent.name(")
    with pytest.raises(ValidationError):
        CsatSettings(low_score=6)
    # Every survey text is rendered with sample values: a misspelt variable is refused at
    # check-config, not found when the survey should go out.
    for key in ("question", "comment_question", "nps_question", "thanks"):
        with pytest.raises(ValidationError, match="frist_name"):
            CsatSettings(**{key: "Hi {{ customer.frist_name }}"})  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="nope"):
            CsatOverride(**{key: "{{ nope }}"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        CsatOverride(bogus=True)  # type: ignore[call-arg]


def callback(**query: object) -> bytes:
    base: dict[str, object] = {
        "id": "q1", "from": {"id": 7, "is_bot": False, "first_name": "Ann"}, "data": "s:x:4",
        "message": {"message_id": 55, "chat": {"id": 7, "type": "private"}, "date": 1}}
    return json.dumps({"update_id": 9, "callback_query": {**base, **query}}).encode()


def test_callback_query_parses_to_a_pick() -> None:
    [item] = parse_update(callback())
    assert (item.choice, item.choice_ack, item.platform_ref, item.address, item.text) == (
        "s:x:4", "q1", "55", "7", "")
    # Another chat's message, a group, a bot or no data: no pick at all.
    assert parse_update(callback(message={"message_id": 55, "chat": {"id": 8,
                                                                    "type": "private"}})) == []
    assert parse_update(callback(message={"message_id": 55, "chat": {"id": 7,
                                                                    "type": "group"}})) == []
    assert parse_update(callback(**{"from": {"id": 7, "is_bot": True}})) == []
    assert parse_update(callback(data=None)) == []
    with pytest.raises(Malformed):
        parse_update(callback(id=5))


def outbound(choices: Choices | None) -> OutboundMessage:
    return OutboundMessage(message_id=MessageId(1), conversation_id=ConversationId(1),
                           address="7", text="How did we do?", author_name="Support",
                           choices=choices)


def test_keyboard_and_quick_replies() -> None:
    items = tuple(Choice(id=f"s:t:{n}", title=str(n)) for n in range(1, 6))
    long = Choice(id="x" * 65, title="too long for Telegram")
    markup = keyboard(outbound(Choices(items=(*items, long))))
    assert markup is not None
    assert [b.callback_data for b in markup.inline_keyboard[0]] == [c.id for c in items]
    assert keyboard(outbound(None)) is None
    replies = quick_replies(outbound(Choices(items=(Choice(id="p", title="t" * 30),))))
    assert replies == {"quick_replies": [{"content_type": "text", "title": "t" * 20,
                                          "payload": "p"}]}
    assert quick_replies(outbound(None)) == {}


async def test_standin_refuses_as_the_bot_api_does() -> None:
    async with TelegramStandin() as tg, aiohttp.ClientSession() as http:
        url = f"{tg.base_url}{tg.token}"

        async def call(method: str, **params: object) -> tuple[int, dict[str, object]]:
            async with http.post(f"{url}/{method}", json=params) as resp:
                return resp.status, await resp.json()

        bad = {"inline_keyboard": [[{"text": "1", "callback_data": "x" * 65}]]}
        assert (await call("sendMessage", chat_id=7, text="q", reply_markup=bad))[0] == 400
        good = {"inline_keyboard": [[{"text": "1", "callback_data": "s:1"}]]}
        status, body = await call("sendMessage", chat_id=7, text="q", reply_markup=good)
        assert status == 200
        message_id = body["result"]["message_id"]  # type: ignore[index]
        update = tg.callback_update(chat_id=7, message_id=message_id, data="s:1")
        query = update["callback_query"]["id"]
        assert (await call("answerCallbackQuery", callback_query_id="forged"))[0] == 400
        assert (await call("answerCallbackQuery", callback_query_id=query))[0] == 200
        assert (await call("answerCallbackQuery", callback_query_id=query))[0] == 400
        assert (await call("editMessageReplyMarkup", chat_id=7, message_id=999))[0] == 400
        assert (await call("editMessageReplyMarkup", chat_id=7, message_id=message_id))[0] \
            == 200
        assert tg.markups[(7, message_id)] is None
        # Removing buttons that are gone: "message is not modified".
        assert (await call("editMessageReplyMarkup", chat_id=7, message_id=message_id))[0] \
            == 400
