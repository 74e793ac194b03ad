"""A survey past `answer_days` at a moved clock (review of issue 23): a Telegram press and the
survey page no longer answer it (the press is acknowledged as closed, the page says 410);
just before the deadline both ways still work.  Both stores."""

from __future__ import annotations

from bridge.standins.clock import OffsetClock
from tests.conftest import HarnessFactory
from tests.helpers_ownership import lines
from tests.test_csat_telegram import answered_calls, buttons, closed_with_survey, press

DAY = 86_400.0
CSAT = {"csat": {"enabled": True, "answer_days": 2}}


async def test_a_press_and_the_page_after_answer_days_answer_nothing(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    h = await make_harness(CSAT, clock=clock)
    thread, question = await closed_with_survey(h)
    token = h.rows("SELECT token FROM surveys")[0][0]
    clock.offset = 2 * DAY + 60  # past the two days
    async with h.session.get(f"{h.url}/survey/{token}") as resp:
        assert resp.status == 410
    async with h.session.post(f"{h.url}/survey/{token}", data={"score": "5"}) as resp:
        assert resp.status == 410
    await press(h, question, buttons(question)[4]["callback_data"])
    [call] = answered_calls(h)  # the spinner stops, saying the survey is closed
    assert call.params.get("text") == "This survey is closed."
    assert h.rows("SELECT state, score FROM surveys") == [("sent", None)]
    assert not any(":star:" in line for line in lines(h, thread))
    assert h.count("messages WHERE direction = 'in'") == 1


async def test_just_before_answer_days_the_press_still_answers(
        make_harness: HarnessFactory) -> None:
    clock = OffsetClock()
    h = await make_harness(CSAT, clock=clock)
    _, question = await closed_with_survey(h)
    token = h.rows("SELECT token FROM surveys")[0][0]
    clock.offset = 2 * DAY - 60
    async with h.session.get(f"{h.url}/survey/{token}") as resp:
        assert resp.status == 200
    await press(h, question, buttons(question)[1]["callback_data"])
    assert h.rows("SELECT state, score FROM surveys") == [("answered", 2)]
