"""Surveys with two instances on one database (review of issue 23): a close on one instance
sends the question once; the same press delivered to both instances, and a page answer on
the other, record one answer and one line in the thread."""

from __future__ import annotations

import pytest

from tests.conftest import HarnessFactory
from tests.helpers_ownership import lines
from tests.helpers_pg import PG_URL, fresh_schema
from tests.test_csat_telegram import CHAT, CSAT, buttons, closed_with_survey
from tests.waiting import until


@pytest.mark.backends("postgres")  # two instances share one database
async def test_a_survey_is_sent_and_answered_once_across_two_instances(
        make_harness: HarnessFactory) -> None:
    async with fresh_schema() as schema:
        config = {**CSAT, "storage": {"url": PG_URL, "schema": schema}}
        one = await make_harness(config)
        two = await make_harness(config)
        thread, question = await closed_with_survey(one)
        await two.drained()
        assert len([m for m in one.telegram.sent if m.get("reply_markup")]) == 1
        assert one.rows("SELECT kind, state FROM surveys") == [("csat", "sent")]
        token = one.rows("SELECT token FROM surveys")[0][0]

        four = buttons(question)[3]["callback_data"]
        update = one.telegram.callback_update(chat_id=CHAT, message_id=question["message_id"],
                                              data=four)
        for h in (two, one):  # the same press, redelivered to the other instance
            status, _ = await h.telegram.deliver(update, h.session)
            assert status == 200
        async with two.session.post(f"{two.url}/survey/{token}",
                                    data={"score": "1", "comment": "late"}) as resp:
            assert resp.status == 410  # answered already
        for h in (one, two):
            await h.drained()
        await until(lambda: any(":star: 4/5" in line for line in lines(one, thread)),
                    "the answer in the thread")
        assert one.rows("SELECT state, score, comment FROM surveys") == [
            ("answered", 4, None)]
        assert len([line for line in lines(one, thread) if ":star:" in line]) == 1
        assert one.count("messages WHERE direction = 'in'") == 1
        assert len([m for m in one.telegram.sent if m.get("reply_markup")]) == 1
        for bridge in (one.bridge, two.bridge):
            await bridge.stop()  # before the schema goes
