"""Canned replies (issue 22) through the real app: `!canned <name>` previews the filled reply
only to the agent; *Send* posts it under the agent's name and sends it to the customer once;
*Edit* sends what the agent changed; a template that reaches past its variables is refused."""

from __future__ import annotations

from pathlib import Path

from bridge.standins.twilio import TwilioStandin
from tests.conftest import AGENT, AGENT_NAME, CHANNEL, HarnessFactory
from tests.helpers_canned import (
    ESCAPE,
    LATE,
    REFUND,
    click,
    customer_texts,
    notes,
    preview,
    previews,
    shown_text,
    text_value,
    write_replies,
)
from tests.helpers_ownership import OTHER, add_other, started
from tests.helpers_twilio import WA, sender, twilio_config
from tests.helpers_twilio import twilio as twilio
from tests.waiting import until

CANNED = {"canned": {"dir": "canned"}, "conversations": {"assign_on_first_reply": True}}


async def test_a_reply_previewed_then_sent_as_the_agent_once(
        tmp_path: Path, make_harness: HarnessFactory, twilio: TwilioStandin) -> None:
    write_replies(tmp_path, late=LATE, refund=REFUND)
    h = await make_harness({**CANNED, **twilio_config(twilio)})
    s = sender(h)
    assert (await s.post(s.whatsapp(from_=WA, body="Where is my parcel?",
                                    profile_name="Ann Lee")))[0] == 200
    thread = await h.thread_at(WA)
    assert await h.agent_says(thread, "!field order_id A-1042") == 200
    assert h.rows("SELECT name, value, set_by FROM customer_fields") == [
        ("order_id", "A-1042", AGENT)]
    shown = await preview(h, thread, "!canned late")
    assert "Hi Ann, this is Dana." in shown_text(shown)
    assert "*A-1042*" in shown_text(shown)  # Markdown bold, as Slack writes it
    assert "<https://example.com/t|tracking>" in shown_text(shown)
    await h.drained()
    assert twilio.sent == []  # nothing before Send
    assert h.rows("SELECT assignee FROM conversations") == [(None,)]

    assert await click(h, shown, "send") == 200
    await until(lambda: len(twilio.sent) == 1, lambda: str(twilio.sent))
    [sent] = twilio.sent
    # Signed with the agent's name and converted for the channel, as any reply is.
    assert sent["to"] == WA and sent["body"] == (
        "Dana: Hi Ann, this is Dana. Your order\nA-1042 is on its way; see tracking"
        " (https://example.com/t).")
    # One post in the thread, under the agent's name and picture, with the text.
    [post] = [m for m in h.slack.thread(CHANNEL, thread) if m.get("username")]
    assert post["username"] == AGENT_NAME
    assert post["icon_url"] == f"https://avatars.standin.slack.com/{AGENT}_192.png"
    assert post["text"].startswith("Hi Ann, this is Dana. Your order\n*A-1042*")
    await h.drained()
    # Stored as the agent's reply on that post: it counts, and the receipt lands there.
    assert h.rows("SELECT author_slack_user, slack_ts FROM messages"
                  " WHERE direction = 'out'") == [(AGENT, post["ts"])]
    assert h.rows("SELECT assignee FROM conversations") == [(AGENT,)]
    assert h.rows("SELECT state, post_ts FROM canned_previews") == [("sent", post["ts"])]
    status = s.status(message_sid=str(sent["sid"]), status="delivered", to=WA)
    assert (await s.post(status, path="/status"))[0] == 200
    await until(lambda: h.slack.reactions.get((CHANNEL, post["ts"])) == ["white_check_mark"],
                lambda: f"a receipt on the post; reactions: {h.slack.reactions}")

    # The preview is redrawn through its response_url: no buttons left.
    [redrawn] = [e for e in h.slack.ephemerals if e["ts"] == shown["ts"]]
    assert redrawn["text"] == "Canned reply sent (see the thread)." and not redrawn["blocks"]
    # A second click (or a redelivered one) sends nothing more.
    assert await click(h, shown, "send") == 200
    await h.drained()
    assert len(twilio.sent) == 1
    assert len([m for m in h.slack.thread(CHANNEL, thread) if m.get("username")]) == 1
    assert "already sent or cancelled" in notes(h)[-1]


async def test_edit_sends_what_the_agent_changed_and_cancel_sends_nothing(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, refund=REFUND)
    h = await make_harness(CANNED)
    thread = await started(h)
    shown = await preview(h, thread, "!canned refund")
    assert "Refunds take five working days, Ann." in shown_text(shown)
    assert await click(h, shown, "edit") == 200
    [view] = h.slack.views.values()
    [block] = view["blocks"]
    assert block["element"]["initial_value"].startswith("Refunds take five working days, Ann.")
    edited = "Refunds take three working days, Ann, as agreed."
    status, _ = await h.agent.post_interaction(h.agent.view_submission(
        user=AGENT, view=view, values={"text": {"text": text_value(edited)}}))
    assert status == 200
    signed = f"<b>{AGENT_NAME}</b>\n{edited}"
    await until(lambda: customer_texts(h) == [signed], lambda: str(customer_texts(h)))
    assert [m["text"] for m in h.slack.thread(CHANNEL, thread) if m.get("username")] == [edited]

    [redrawn] = [e for e in h.slack.ephemerals if e["ts"] == shown["ts"]]
    assert redrawn["text"] == "Canned reply sent as edited (see the thread)."
    cancelled = await preview(h, thread, "!canned refund")
    assert await click(h, cancelled, "cancel") == 200
    [redrawn] = [e for e in h.slack.ephemerals if e["ts"] == cancelled["ts"]]
    assert redrawn["text"] == "Canned reply `refund` cancelled: nothing was sent."
    assert await click(h, cancelled, "send") == 200
    await h.drained()
    assert customer_texts(h) == [signed]
    assert sorted(r[0] for r in h.rows("SELECT state FROM canned_previews")) == [
        "cancelled", "sent"]


async def test_a_sandbox_escape_and_a_missing_variable_are_refused(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, escape=ESCAPE, late=LATE)
    h = await make_harness(CANNED)
    thread = await started(h)
    assert await h.agent_says(thread, "!canned escape") == 200
    assert await h.agent_says(thread, "!canned late") == 200  # no order_id field yet
    await h.drained()
    assert previews(h) == []
    escape, late = notes(h)[-2:]
    assert "refused by the template sandbox" in escape and "Nothing was sent" in escape
    assert "missing variable" in late and "order_id" in late
    assert customer_texts(h) == []
    assert h.count("canned_previews") == 0


async def test_a_reply_with_a_file_sends_the_file_after_the_text(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, form="---\nname: form\ntitle: Return form\nattachments: "
                  "[files/return.pdf]\n---\nHere is the form, {{ customer.first_name }}.\n")
    (tmp_path / "canned" / "files").mkdir()
    pdf = b"%PDF-1.4 return form\n%%EOF\n"
    (tmp_path / "canned" / "files" / "return.pdf").write_bytes(pdf)
    h = await make_harness(CANNED)
    thread = await started(h)
    shown = await preview(h, thread, "!canned form")
    assert ":paperclip: return.pdf" in shown_text(shown)
    assert await click(h, shown, "send") == 200
    [doc] = await h.telegram.wait_for("sendDocument", 1)
    assert doc.params["document"]["content"] == pdf
    assert customer_texts(h) == [f"<b>{AGENT_NAME}</b>\nHere is the form, Ann."]
    # The file is in the thread too, where the agents see what went.
    assert [m["files"][0]["name"] for m in h.slack.thread(CHANNEL, thread)
            if m.get("files")] == ["return.pdf"]
    await h.drained()
    assert h.rows("SELECT state FROM messages WHERE direction = 'out'") == [("sent",)]


async def test_another_agents_click_and_a_made_up_token_send_nothing(
        tmp_path: Path, make_harness: HarnessFactory) -> None:
    write_replies(tmp_path, refund=REFUND)
    h = await make_harness(CANNED)
    add_other(h)
    thread = await started(h)
    shown = await preview(h, thread, "!canned refund")
    assert await click(h, shown, "send", user=OTHER) == 200  # not Sam's preview
    forged = {**shown, "blocks": [{"elements": [{"action_id": "canned_send", "value": "x" * 300}]}]}
    assert await click(h, forged, "send") == 200
    status, _ = await h.agent.post_interaction(h.agent.view_submission(
        user=AGENT, view={"id": "V1", "type": "modal", "callback_id": "canned_edit_view",
                          "private_metadata": "not json"},
        values={"text": {"text": text_value("hi")}}))
    assert status == 200
    await h.drained()
    assert customer_texts(h) == [] and h.rows("SELECT state FROM canned_previews") == [("ready",)]
    assert await click(h, shown, "send") == 200  # Dana's own click still works
    await until(lambda: len(customer_texts(h)) == 1, lambda: str(customer_texts(h)))
