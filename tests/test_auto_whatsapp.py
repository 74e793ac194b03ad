"""The FAQ's "talk to a person" button on WhatsApp Cloud (issue 21): the answer carries a
native reply button; tapping it hands over to a person like writing "agent"."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.whatsapp import SEND, WhatsAppStandin
from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.helpers_whatsapp import KERRY, NUMBER_A, sender, whatsapp_harness
from tests.waiting import until

pytestmark = pytest.mark.backends("sqlite")  # the platform's buttons; the SQL runs elsewhere

FAQ = '[[faq]]\nquestions = ["When are you open?"]\nanswer = "Weekdays 9 to 5."\n'


async def test_the_faq_answer_has_a_button_that_hands_over(
        make_harness: HarnessFactory, wa: WhatsAppStandin, clock: OffsetClock,
        tmp_path: Path) -> None:
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    h: Harness = await whatsapp_harness(make_harness, wa, clock,
                                        others={"faq": {"file": "faq.toml"}})
    s = sender(h, wa, clock)
    assert await s.send(NUMBER_A, s.message(KERRY, text="when are you open")) == 200
    [call] = await wa.wait_for(SEND, 1)  # the answer, its button under it
    button = call.params["interactive"]
    assert button["type"] == "button"
    assert button["action"]["buttons"][0]["reply"] == {"id": "faq:person",
                                                       "title": "Talk to a person"}
    assert "Weekdays 9 to 5." in button["body"]["text"]

    tap = {"type": "button_reply", "button_reply": {"id": "faq:person",
                                                    "title": "Talk to a person"}}
    assert await s.send(NUMBER_A, s.message(KERRY, "interactive", tap)) == 200
    await wa.wait_for(SEND, 2)
    await h.drained()
    thread = await h.thread_at(f"{NUMBER_A}:{KERRY}")
    await until(lambda: any("asked for a person" in str(m["text"])
                            for m in h.slack.thread(CHANNEL, thread)), "the handover")
    assert h.rows("SELECT kind FROM auto_answers ORDER BY id") == [
        ("faq",), ("person",), ("person_coming",)]
