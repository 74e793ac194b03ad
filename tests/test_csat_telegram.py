"""CSAT on Telegram (issue 23): an agent closes, the customer gets an inline keyboard, a button
press is the answer (answerCallbackQuery, buttons removed), a forged or replayed press changes
nothing, and an answer never reopens the conversation.  Both stores."""

from __future__ import annotations

from typing import Any

from tests.conftest import AGENT, Harness, HarnessFactory
from tests.helpers_ownership import context, lines, started
from tests.waiting import poll

CHAT = 4242
CSAT = {"csat": {"enabled": True, "low_score": 2}}


async def closed_with_survey(h: Harness) -> tuple[str, dict[str, Any]]:
    thread = await started(h, CHAT)
    assert await h.agent_says(thread, "!close") == 200

    async def sent() -> list[dict[str, Any]]:
        return [m for m in h.telegram.sent if m.get("reply_markup")]
    [question] = await poll(sent, lambda got: len(got) == 1, "the survey with buttons")
    await h.drained()
    return thread, question


def buttons(question: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in question["reply_markup"]["inline_keyboard"] for b in row]


async def press(h: Harness, question: dict[str, Any], data: str) -> str:
    update = h.telegram.callback_update(chat_id=CHAT, message_id=question["message_id"],
                                        data=data)
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    await h.drained()
    return str(update["callback_query"]["id"])


def answered_calls(h: Harness) -> list[Any]:
    return h.telegram.calls_to("answerCallbackQuery", ok_only=False)


async def test_button_answer_lands_in_thread(make_harness: HarnessFactory) -> None:
    h = await make_harness(CSAT)
    thread, question = await closed_with_survey(h)
    assert [b["text"] for b in buttons(question)] == ["1", "2", "3", "4", "5"]
    assert all(b["callback_data"].startswith("s:") for b in buttons(question))
    four = buttons(question)[3]["callback_data"]

    query = await press(h, question, four)
    assert h.telegram.callbacks[query] is True  # answerCallbackQuery was called
    key = (CHAT, question["message_id"])
    assert h.telegram.markups[key] is None  # the keyboard is gone
    assert h.rows("SELECT kind, state, score, assignee FROM surveys") == [
        ("csat", "answered", 4, None)]
    assert any(line.startswith(":star: 4/5 from Ann") for line in lines(h, thread))
    assert context(h, thread).endswith(" · :star: 4/5")  # the parent shows it too
    # The answer is no message and reopens nothing.
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert h.count("messages WHERE direction = 'in'") == 1

    # A replay of the same press (or a second one) changes nothing.
    await press(h, question, buttons(question)[0]["callback_data"])
    assert h.rows("SELECT score FROM surveys") == [(4,)]
    assert h.rows("SELECT status FROM conversations") == [("closed",)]


async def test_the_question_names_the_customer(make_harness: HarnessFactory) -> None:
    """The one template syntax: `{{ customer.first_name }}` works in the survey as in every
    customer-facing text."""
    h = await make_harness({"csat": {"enabled": True, "question":
                                     "{{ customer.first_name }}, how did {{ team }} do?"}})
    _, question = await closed_with_survey(h)
    assert "\nAnn, how did support do?" in question["text"]


async def test_forged_callback_changes_nothing(make_harness: HarnessFactory) -> None:
    h = await make_harness(CSAT)
    thread, question = await closed_with_survey(h)
    real = buttons(question)[4]["callback_data"]
    _, token, _ = real.split(":")
    head, sig = token.split(".")
    forged = [f"s:{head}.{'A' * len(sig)}:5",  # a signature we did not make
              f"s:{token}:9",  # a score outside the scale
              "s:xxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxx:1",  # a token never issued
              "csat:5", "5"]
    for data in forged:
        await press(h, question, data)
    assert h.rows("SELECT state, score FROM surveys") == [("sent", None)]
    assert h.telegram.markups[(CHAT, question["message_id"])] is not None  # buttons kept
    assert len(answered_calls(h)) == len(forged)  # each press was answered ("closed")
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert not any(":star:" in line for line in lines(h, thread))

    # The real button still works afterwards.
    await press(h, question, real)
    assert h.rows("SELECT state, score FROM surveys") == [("answered", 5)]


async def test_low_score_mentions_assignee_and_asks_comment(
        make_harness: HarnessFactory) -> None:
    h = await make_harness(CSAT)
    thread = await started(h, CHAT)
    assert await h.agent_says(thread, "!claim") == 200
    await h.drained()
    assert await h.agent_says(thread, "!close") == 200

    async def sent() -> list[dict[str, Any]]:
        return [m for m in h.telegram.sent if m.get("reply_markup")]
    [question] = await poll(sent, lambda got: len(got) == 1, "the survey")
    await h.drained()
    await press(h, question, buttons(question)[0]["callback_data"])
    assert h.rows("SELECT score, assignee FROM surveys") == [(1, AGENT)]
    assert any(line.startswith(":star: 1/5 from Ann") and f"<@{AGENT}>" in line
               for line in lines(h, thread))
    # The comment request went out; the next text is the comment, not a new message.
    assert "What could we have done better?" in str(h.telegram.sent[-1]["text"])
    comment = h.telegram.text_update(chat_id=CHAT, text="Too slow", first_name="Ann")
    for _ in range(2):  # Telegram delivers it again: still one comment, no message
        assert (await h.telegram.deliver(comment, h.session))[0] == 200
    await h.drained()
    assert h.rows("SELECT comment FROM surveys") == [("Too slow",)]
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
    assert any("Comment from Ann" in line and "Too slow" in line for line in lines(h, thread))
    # Later text is the customer writing again, as usual.
    assert await h.customer_says(CHAT, "Hello again", first_name="Ann") == 200
    await h.drained()
    assert h.count("messages WHERE direction = 'in'") == 2


async def test_reopen_before_send_cancels(make_harness: HarnessFactory) -> None:
    h = await make_harness(CSAT)
    thread = await started(h, CHAT)
    await h.drained()
    h.telegram.fail_next("sendMessage", status=429, retry_after=2)  # the question waits
    assert await h.agent_says(thread, "!close") == 200

    async def refused() -> list[Any]:
        return h.telegram.calls_to("sendMessage", ok_only=False)
    await poll(refused, lambda got: any(not c.ok for c in got), "the refused first send")
    assert await h.agent_says(thread, "!reopen") == 200
    await h.drained(timeout=10)
    assert h.rows("SELECT state, reason FROM surveys") == [("cancelled", "reopened")]
    assert not [m for m in h.telegram.sent if m.get("reply_markup")]
    assert any("reopened first" in line for line in lines(h, thread))
