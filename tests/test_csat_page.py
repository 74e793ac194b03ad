"""The email survey (issue 23): the mail carries a link to the one-page survey, which a person
answers in headless Chromium (with a screenshot); GET never uses the token up, the first POST
records the answer, a later one gets 410; forged or unknown tokens get 404."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser

from tests.browser import screenshot
from tests.conftest import Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.helpers_ownership import lines
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config

ANN = "Ann Kim <ann@example.org>"
LINK = re.compile(r"https?://\S+/survey/(\S+)")


@pytest.fixture
async def h(dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory) -> Harness:
    return await make_harness({"connectors.email": email_config(dovecot, smtp),
                               "csat": {"enabled": True}}, env=EMAIL_ENV)


async def survey_link(h: Harness, dovecot: Dovecot, smtp: SmtpReceiver) -> tuple[str, str]:
    await dovecot.append(customer_mail(ANN, "Order 123", "Where is it?", message_id="a@x.org"))
    thread = await h.thread_at("ann@example.org", timeout=10)
    assert await h.agent_says(thread, "!close") == 200
    [mail] = await smtp.wait_for(1)
    body = mail.message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found is not None, body.get_content()
    await h.drained()
    return thread, found.group(1)


async def test_email_survey_answered_in_chromium(
        h: Harness, dovecot: Dovecot, smtp: SmtpReceiver, browser: Browser) -> None:
    thread, token = await survey_link(h, dovecot, smtp)
    url = f"{h.url}/survey/{token}"
    async with h.session.get(url) as resp:  # a mail scanner opens it: nothing is used up
        assert resp.status == 200
    assert h.rows("SELECT state FROM surveys") == [("sent",)]

    page = await browser.new_page()
    await page.goto(url)
    assert await page.get_by_role("heading").inner_text() == (
        "How did we do? Please rate your conversation with us.")
    await page.get_by_label("4 – Good").check()
    await page.get_by_label("Anything you would like to tell us?").fill("Quick and kind")
    await screenshot(page, "csat-survey-filled")
    await page.get_by_role("button", name="Send").click()
    await page.get_by_text("Your answer has been recorded.").wait_for()
    await screenshot(page, "csat-survey-thanks")
    await h.drained()
    assert h.rows("SELECT state, score, comment FROM surveys") == [
        ("answered", 4, "Quick and kind")]
    assert any(line.startswith(":star: 4/5 from Ann Kim") and line.endswith(
        ": Quick and kind") for line in lines(h, thread)), lines(h, thread)
    assert h.rows("SELECT status FROM conversations") == [("closed",)]

    # A second post (the form sent again, another tab) gets 410 and changes nothing.
    async with h.session.post(url, data={"score": "1", "comment": "x"}) as resp:
        assert resp.status == 410
    async with h.session.get(url) as resp:
        assert resp.status == 410
    assert h.rows("SELECT score FROM surveys") == [(4,)]


@pytest.mark.backends("sqlite")
async def test_bad_tokens_and_bad_forms(h: Harness, dovecot: Dovecot,
                                        smtp: SmtpReceiver) -> None:
    _, token = await survey_link(h, dovecot, smtp)
    head, sig = token.split(".")
    for bad in (f"{head}.{'A' * len(sig)}", "nothing", "x" * 300, f"{'B' * 16}.{sig}"):
        async with h.session.get(f"{h.url}/survey/{bad}") as resp:
            assert resp.status == 404
        async with h.session.post(f"{h.url}/survey/{bad}", data={"score": "5"}) as resp:
            assert resp.status == 404
    url = f"{h.url}/survey/{token}"
    for form in ({}, {"score": "6"}, {"score": "abc"}, {"score": "-1"},
                 {"score": "3", "comment": "x" * 2001}):
        async with h.session.post(url, data=form) as resp:
            assert resp.status == 400, form
    async with h.session.post(url, data={"score": "3"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert h.rows("SELECT state, score, comment FROM surveys") == [("answered", 3, None)]
