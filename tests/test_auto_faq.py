"""The FAQ with a person one step away (issue 21, item 3), end to end: Telegram stand-in in,
the bot's answer out through the outbox, the thread showing it as sent by the bridge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.waiting import until

FAQ = '''
[[faq]]
questions = ["When are you open?", "What are your opening hours?"]
answer = "We are open Monday to Friday, 9:00 to 17:00."

[[faq]]
questions = ["How do I reset my password?", "I forgot my password"]
answer = "{{ customer.first_name }}, use the link 'Forgot password' on the sign-in page."
'''
MEMBER = "U0MEMBER01"


async def faq_harness(make_harness: HarnessFactory, tmp_path: Path,
                      **extra: Any) -> Harness:
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    return await make_harness({"faq": {"file": "faq.toml", "threshold": 75, **extra},
                               "teams.support": {"members": [AGENT, MEMBER]}})


def sent_to(h: Harness, chat: int) -> list[str]:
    return [str(m["text"]) for m in h.telegram.sent if m["chat_id"] == chat]


def origins(h: Harness) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in h.rows(
        "SELECT direction, origin FROM messages ORDER BY id")]


async def test_faq_answers_in_other_words_then_hands_over_on_agent(
        make_harness: HarnessFactory, tmp_path: Path) -> None:
    h = await faq_harness(make_harness, tmp_path)
    assert await h.customer_says(7, "i forgot the password to my account", first_name="Ann") \
        == 200
    await until(lambda: len(sent_to(h, 7)) == 1, lambda: f"one answer, got {sent_to(h, 7)}")
    answer = sent_to(h, 7)[0]
    assert "Ann, use the link 'Forgot password' on the sign-in page." in answer
    assert 'Reply "agent" to talk to a person.' in answer
    await h.drained()
    # Stored as the bridge's own message, never an agent's response.
    assert h.rows("SELECT origin, author_slack_user, author_name, state FROM messages"
                  " WHERE direction = 'out'") == [("faq", None, "Support", "sent")]
    thread = await h.thread_of(7)
    shown = [str(m.get("text")) for m in h.slack.thread(CHANNEL, thread)]
    assert any("Sent by the bridge (FAQ answer)" in t and "I forgot my password" in t
               and "score" in t for t in shown), shown
    [entry] = await h.bridge.store.queue()
    assert entry.waiting_since is not None  # the bot's answer answers nobody: still waiting

    # The customer asks for a person: the team is called, the bot says so and stops.
    assert await h.customer_says(7, "Agent!", first_name="Ann") == 200
    await until(lambda: len(sent_to(h, 7)) == 2, lambda: f"two answers, got {sent_to(h, 7)}")
    assert "a person will answer" in sent_to(h, 7)[1]
    await h.drained()
    shown = [str(m.get("text")) for m in h.slack.thread(CHANNEL, thread)]
    assert any("asked for a person" in t and f"<@{AGENT}>" in t and f"<@{MEMBER}>" in t
               for t in shown), shown
    assert await h.customer_says(7, "When are you open?", first_name="Ann") == 200
    await h.drained()
    assert len(sent_to(h, 7)) == 2  # quiet for this conversation from now on
    assert h.count("auto_answers") == 3  # the answer, the request, the bot saying so


async def test_two_questions_in_a_row_get_one_answer_each(make_harness: HarnessFactory,
                                                           tmp_path: Path) -> None:
    """"Never twice in a row without the customer writing": a new question after the bot's
    answer is the customer writing, so it is answered; a redelivery is not a new message."""
    h = await faq_harness(make_harness, tmp_path)
    assert await h.customer_says(9, "what are your opening hours", first_name="Eve") == 200
    await until(lambda: len(sent_to(h, 9)) == 1, lambda: f"one answer, got {sent_to(h, 9)}")
    assert await h.customer_says(9, "i forgot my password", first_name="Eve") == 200
    await until(lambda: len(sent_to(h, 9)) == 2, lambda: f"two answers, got {sent_to(h, 9)}")
    await h.drained()
    assert "9:00 to 17:00" in sent_to(h, 9)[0] and "Eve, use the link" in sent_to(h, 9)[1]
    assert origins(h) == [("in", "person"), ("out", "faq"), ("in", "person"), ("out", "faq")]


async def test_faq_stays_quiet_after_an_agent_answered(make_harness: HarnessFactory,
                                                        tmp_path: Path) -> None:
    h = await faq_harness(make_harness, tmp_path)
    assert await h.customer_says(8, "Hello there", first_name="Ben") == 200
    await h.drained()
    assert sent_to(h, 8) == []  # no question it knows
    thread = await h.thread_of(8)
    assert await h.agent_says(thread, "Hi Ben, how can I help?") == 200
    await until(lambda: len(sent_to(h, 8)) == 1, "the agent's reply")
    assert await h.customer_says(8, "what are your opening hours", first_name="Ben") == 200
    await h.drained()
    assert len(sent_to(h, 8)) == 1  # only the agent's reply: the agent is on it
    assert ("out", "faq") not in origins(h)


async def test_faq_speaks_the_customers_language(make_harness: HarnessFactory,
                                                 tmp_path: Path) -> None:
    h = await faq_harness(make_harness, tmp_path)
    for chat, language, offer in ((9, "sr", 'Odgovorite "agent" da razgovarate sa osobom.'),
                                  (10, "hr", 'Odgovorite "agent" za razgovor s osobom.'),
                                  (11, "sl", 'Odgovorite "agent" za pogovor z osebo.')):
        update = h.telegram.text_update(chat_id=chat, text="When are you open", first_name="Ivo")
        update["message"]["from"]["language_code"] = language
        status, _ = await h.telegram.deliver(update, h.session)
        assert status == 200
        await until(lambda c=chat: len(sent_to(h, c)) == 1, f"an answer in {language}")  # type: ignore[misc]
        assert sent_to(h, chat)[0].endswith(offer)


async def test_an_automatic_answer_never_meets_a_response_target(
        make_harness: HarnessFactory, tmp_path: Path) -> None:
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    h = await make_harness({"faq": {"file": "faq.toml", "threshold": 75},
                            "teams.support": {"greeting": True, "first_response": "10m"}})
    assert await h.customer_says(12, "When are you open?", first_name="Ann") == 200
    await until(lambda: len(sent_to(h, 12)) == 2, "the greeting and the FAQ answer")
    await h.bridge.targets.tick()
    await h.drained()
    assert h.rows("SELECT kind, state, met_at FROM response_targets") == [
        ("first_response", "running", None)]  # still owed: only a person answers


async def test_hostile_messages_neither_trip_nor_stall_the_faq(make_harness: HarnessFactory,
                                                                tmp_path: Path) -> None:
    """Control characters and bidi marks inside a known question still match; a message of
    thousands of characters (the question buried in it) is stored for a person and answered
    by no bot, nor read as a request for a person (it folds to a short one)."""
    h = await faq_harness(make_harness, tmp_path)
    assert await h.customer_says(5, "what\x00 are\u202e your\x07 opening\u200b hours",
                                 first_name="Ida") == 200
    await until(lambda: len(sent_to(h, 5)) == 1, lambda: f"one answer, got {sent_to(h, 5)}")
    huge = "agent, what are your opening hours" + " \x01\u202e\U0001f600" * 700
    assert await h.customer_says(5, huge, first_name="Ida") == 200
    await h.drained()
    assert len(sent_to(h, 5)) == 1
    assert origins(h) == [("in", "person"), ("out", "faq"), ("in", "person")]
    assert h.count("auto_answers") == 1
