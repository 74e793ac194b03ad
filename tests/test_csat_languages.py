"""Survey texts in the customer's language (issue 23 with issue 21's language choice): the
language the platform reports (Telegram's `language_code`), else the team's `language`; the
built-in question, buttons, thanks and survey page come in English, Serbian (Latin), Croatian
or Slovenian, and a configured text wins.  Both stores; the page in headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser

from tests.browser import screenshot
from tests.conftest import Harness, HarnessFactory
from tests.waiting import poll

CHAT = 5151
CSAT = {"csat": {"enabled": True}}


async def closed_in(h: Harness, language: str | None) -> dict[str, Any]:
    """A Telegram customer (app language `language`, None: none reported) writes; an agent
    closes; returns the survey question the customer got."""
    update = h.telegram.text_update(chat_id=CHAT, text="Moj paket kasni", first_name="Ana")
    if language is None:
        update["message"]["from"].pop("language_code", None)
    else:
        update["message"]["from"]["language_code"] = language
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    thread = await h.thread_of(CHAT)
    assert await h.agent_says(thread, "!close") == 200

    async def sent() -> list[dict[str, Any]]:
        return [m for m in h.telegram.sent if m.get("reply_markup")]
    [question] = await poll(sent, lambda got: len(got) == 1, "the survey with buttons")
    await h.drained()
    return question


async def test_slovenian_customer_gets_slovenian_survey_and_page(
        make_harness: HarnessFactory, browser: Browser) -> None:
    h = await make_harness(CSAT)
    question = await closed_in(h, "sl")
    assert "Kako smo vam pomagali? Prosimo, ocenite pogovor z nami." in question["text"]
    assert h.rows("SELECT name, value, set_by FROM customer_fields") == [
        ("language", "sl", "platform")]

    [(token,)] = h.rows("SELECT token FROM surveys")
    page = await browser.new_page()
    await page.goto(f"{h.url}/survey/{token}")
    assert await page.get_attribute("html", "lang") == "sl"
    assert await page.title() == "Vaše mnenje"
    assert await page.get_by_role("heading").inner_text() == (
        "Kako smo vam pomagali? Prosimo, ocenite pogovor z nami.")
    await page.get_by_label("2 – Slabo").check()
    await page.get_by_label("Bi nam želeli še kaj sporočiti?").fill("Prepočasi")
    await screenshot(page, "csat-survey-slovenian")
    await page.get_by_role("button", name="Pošlji").click()
    await page.get_by_text("Vaš odgovor je zabeležen.").wait_for()
    assert await page.get_by_role("heading").inner_text() == "Hvala za vaše mnenje!"
    await h.drained()
    assert h.rows("SELECT state, score, comment FROM surveys") == [
        ("answered", 2, "Prepočasi")]
    async with h.session.get(f"{h.url}/survey/{token}") as resp:
        assert resp.status == 410
        assert "Na to anketo je bil že podan odgovor." in await resp.text()


async def test_team_language_without_a_hint_and_low_score_comment_question(
        make_harness: HarnessFactory) -> None:
    h = await make_harness({**CSAT, "teams.support": {"language": "hr"}})
    question = await closed_in(h, None)
    assert "Kako smo vam pomogli? Molimo ocijenite razgovor s nama." in question["text"]
    assert h.rows("SELECT name FROM customer_fields") == []
    one = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    update = h.telegram.callback_update(chat_id=CHAT, message_id=question["message_id"],
                                        data=one)
    update["callback_query"]["from"].pop("language_code", None)
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200

    async def texts() -> list[str]:
        return [str(m["text"]) for m in h.telegram.sent if m["chat_id"] == CHAT]
    await poll(texts, lambda got: any("Što smo mogli učiniti bolje?" in t for t in got),
               "the comment question in Croatian")
    await h.drained()


async def test_a_configured_text_wins_in_every_language(make_harness: HarnessFactory) -> None:
    h = await make_harness({"csat": {"enabled": True,
                                     "question": "Ocena, {{ customer.first_name }}?"}})
    question = await closed_in(h, "sr")
    assert "Ocena, Ana?" in question["text"]


@pytest.mark.parametrize(("language", "expected"), [
    ("sr-Latn", "Kako smo vam pomogli? Molimo ocenite razgovor sa nama."),
    ("de", "How did we do? Please rate your conversation with us.")])  # no German texts
async def test_region_codes_and_languages_without_texts(
        make_harness: HarnessFactory, language: str, expected: str) -> None:
    h = await make_harness(CSAT)
    question = await closed_in(h, language)
    assert expected in question["text"]


async def test_an_agent_sets_the_language_field(make_harness: HarnessFactory) -> None:
    """The customer field `language` is the agents' to change: `!field language sl` makes the
    survey Slovenian for a customer whose app reported English."""
    h = await make_harness(CSAT)
    update = h.telegram.text_update(chat_id=CHAT, text="Hello", first_name="Ana")
    status, _ = await h.telegram.deliver(update, h.session)
    assert status == 200
    thread = await h.thread_of(CHAT)
    await h.drained()
    assert h.rows("SELECT value, set_by FROM customer_fields") == [("en", "platform")]
    assert await h.agent_says(thread, "!field language sl") == 200
    await h.drained()
    assert await h.agent_says(thread, "!close") == 200

    async def sent() -> list[dict[str, Any]]:
        return [m for m in h.telegram.sent if m.get("reply_markup")]
    [question] = await poll(sent, lambda got: len(got) == 1, "the survey with buttons")
    assert "Prosimo, ocenite pogovor z nami." in question["text"]
