"""The survey's ways in with generated input (issue 23): `/survey/<token>` with any token and
any form body, and Telegram button presses with any `callback_data`: never a 5xx, never an
answer but from a valid form, never a message from a press."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from tests.conftest import HarnessFactory
from tests.helpers_ownership import started
from tests.test_fuzz_endpoints import drawn
from tests.waiting import poll

pytestmark = pytest.mark.backends("sqlite")  # the web layer's answers
CHAT = 5151
TOKEN_CHARS = st.characters(codec="ascii", exclude_characters="/?#%")


async def test_survey_page_and_presses_never_5xx(make_harness: HarnessFactory) -> None:
    h = await make_harness({"csat": {"enabled": True}})
    thread = await started(h, CHAT)
    assert await h.agent_says(thread, "!close") == 200

    async def sent() -> list[Any]:
        return [m for m in h.telegram.sent if m.get("reply_markup")]
    [question] = await poll(sent, lambda got: len(got) == 1, "the survey")
    await h.drained()
    token = h.rows("SELECT token FROM surveys")[0][0]

    for bad in drawn(st.text(TOKEN_CHARS, max_size=120), 40):
        async with h.session.get(f"{h.url}/survey/{bad}") as resp:
            assert resp.status == 404, bad
    forms = drawn(st.binary(max_size=300) | st.dictionaries(
        st.sampled_from(["score", "comment", "x"]), st.text(max_size=40), max_size=3), 60)
    statuses: set[int] = set()
    for form in forms:
        if isinstance(form, bytes):
            kwargs: dict[str, Any] = {"data": form, "headers": {
                "Content-Type": "application/x-www-form-urlencoded"}}
        else:
            kwargs = {"data": form}
        async with h.session.post(f"{h.url}/survey/{token}", **kwargs) as resp:
            statuses.add(resp.status)
            assert resp.status in (200, 400, 410), (resp.status, form)
    answered = h.rows("SELECT state, score FROM surveys")
    assert answered[0][0] in ("sent", "answered")
    assert (answered[0][0] == "answered") == (200 in statuses)

    for data in drawn(st.text(max_size=64), 40):
        update = h.telegram.callback_update(chat_id=CHAT, message_id=question["message_id"],
                                            data=data)
        status, _ = await h.telegram.deliver(update, h.session)
        assert status == 200
    await h.drained()
    assert h.rows("SELECT state, score FROM surveys") == answered
    assert h.count("messages WHERE direction = 'in'") == 1
    assert h.rows("SELECT status FROM conversations") == [("closed",)]
