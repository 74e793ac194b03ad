"""The widget for every visitor (issue 26), in headless Chromium: its language from the page's
`lang` or the browser's, site overrides, focus kept in the open window, reduced motion,
AA contrast as rendered, keyboard-only use through a whole conversation, invitations, and the
offline prompt whose email address gets the answer by mail (the real SMTP receiver and
Dovecot) and in the widget."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from bridge.standins.clock import OffsetClock
from bridge.standins.config import TomlValue
from tests.browser import screenshot
from tests.conftest import CHANNEL, HarnessFactory
from tests.dovecot import Dovecot
from tests.helpers_webchat import chat_log, open_and_say, shop_site, webchat_harness, webchat_thread
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config

BELGRADE = ZoneInfo("Europe/Belgrade")


def at(clock: OffsetClock, text: str) -> None:
    """Move the business clock to a local Belgrade time ("2026-12-12 10:00")."""
    clock.offset = datetime.fromisoformat(text).replace(tzinfo=BELGRADE).timestamp() - time.time()


ALL = ["en", "sr-Latn", "sr-Cyrl", "hr", "sl"]
OPEN = {"en": "Open chat", "sr-Latn": "Otvori čet", "sr-Cyrl": "Отвори чет",
        "hr": "Otvori chat", "sl": "Odpri klepet"}
SEND = {"en": "Send", "sr-Latn": "Pošalji", "sr-Cyrl": "Пошаљи", "hr": "Pošalji",
        "sl": "Pošlji"}
CONTRAST = """() => {
  const root = document.querySelector('[data-bridge-chat]').shadowRoot;
  const rgb = s => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = el => { for (let e = el; e; e = e.parentElement || e.getRootNode().host) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return rgb(c); }
    return [255, 255, 255]; };
  return [...root.querySelectorAll('h2, .t, .s, .a span, form button, .x, .st, .fab')]
    .filter(e => e.textContent.trim() || e.classList.contains('fab'))
    .map(e => { const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
      return [e.className || e.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""


@pytest.mark.backends("sqlite")  # what the page shows; no store behaviour
async def test_each_language_from_the_page_or_the_browser(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        languages: list[TomlValue] = list(ALL)
        await webchat_harness(make_harness, site, languages=languages)
        for lang in ALL:
            site.lang = lang
            page = await browser.new_page()
            await page.goto(site.origin)
            await page.get_by_role("button", name=OPEN[lang]).click()
            await expect(page.get_by_role("button", name=SEND[lang], exact=False)).to_be_visible()
            await screenshot(page, f"webchat-lang-{lang}")
            await page.close()
        site.lang = ""  # no lang on the page: the browser's language decides
        context = await browser.new_context(locale="sl-SI")
        page = await context.new_page()
        await page.goto(site.origin)
        await expect(page.get_by_role("button", name="Odpri klepet")).to_be_visible()
        await context.close()


@pytest.mark.backends("sqlite")  # what the page shows; no store behaviour
async def test_a_site_overrides_texts_and_offers_only_its_languages(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site(lang="hr") as site:
        await webchat_harness(make_harness, site, languages=["en", "sl"],
                              texts={"en": {"placeholder": "Ask Acme anything"}})
        page = await browser.new_page()
        await page.goto(site.origin)  # Croatian is not offered: the site's first language
        await page.get_by_role("button", name="Open chat").click()
        await expect(page.get_by_placeholder("Ask Acme anything")).to_be_visible()


async def contrast_ok(page: Page) -> None:
    ratios = await page.evaluate(CONTRAST)
    assert len(ratios) >= 6, ratios
    assert all(ratio >= 4.5 for _, ratio in ratios), ratios


@pytest.mark.backends("sqlite")  # keyboard and rendering; the store is covered elsewhere
async def test_keyboard_only_through_a_conversation_with_focus_kept_and_aa_contrast(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        context = await browser.new_context(reduced_motion="reduce")
        page = await context.new_page()
        await page.goto(site.origin)
        await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await page.keyboard.type("Hello, keyboard here")
        await page.keyboard.press("Enter")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        assert await h.agent_says(thread, "Hello! Tab works.") == 200
        await expect(chat_log(page).get_by_text("Hello! Tab works.")).to_be_visible()
        for _ in range(9):  # around the window and back: focus never leaves it
            await page.keyboard.press("Tab")
            inside = await page.evaluate(
                "() => !!document.querySelector('[data-bridge-chat]').shadowRoot"
                ".activeElement?.closest('.win')")
            assert inside
        await page.keyboard.press("Shift+Tab")
        animation = await page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-bridge-chat]').shadowRoot"
            ".querySelector('.win')).animationName")
        assert animation == "none"  # prefers-reduced-motion: reduce
        await contrast_ok(page)
        await screenshot(page, "webchat-keyboard")
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("button", name="Open chat")).to_be_focused()
        moving = await browser.new_page()
        await moving.goto(site.origin)
        await moving.get_by_role("button", name="Open chat").click()
        assert await moving.evaluate(
            "() => getComputedStyle(document.querySelector('[data-bridge-chat]').shadowRoot"
            ".querySelector('.win')).animationName") == "in"


async def test_an_invitation_once_per_day_that_becomes_a_conversation(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site, invitations=[
            {"url_pattern": "/other*", "after_seconds": 20.0,
             "text": "Need help choosing socks?"}])
        context = await browser.new_context()
        page = await context.new_page()
        await page.clock.install()
        await page.goto(site.origin)  # "/" does not match
        await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
        await page.clock.fast_forward(30_000)
        assert await page.get_by_text("Need help choosing socks?").count() == 0

        await page.goto(f"{site.origin}/other")
        await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
        bubble = page.get_by_text("Need help choosing socks?")
        await page.clock.fast_forward(10_000)
        assert await bubble.count() == 0  # not before after_seconds
        await page.clock.fast_forward(11_000)
        await expect(bubble).to_be_visible()
        await screenshot(page, "webchat-invitation")
        await bubble.click()  # it opens the chat
        await open_and_say(page, "Yes, wool ones please")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        first = h.slack.thread(CHANNEL, thread)
        assert any('after the invitation "Need help choosing socks?"' in m["text"]
                   for m in first), first

        again = await context.new_page()  # the same visitor, the same day
        await again.clock.install()
        await again.goto(f"{site.origin}/other")
        await expect(again.get_by_role("button", name="Open chat")).to_be_visible()
        await again.clock.fast_forward(60_000)
        assert await again.get_by_text("Need help choosing socks?").count() == 0
        other = await (await browser.new_context()).new_page()  # another visitor
        await other.clock.install()
        await other.goto(f"{site.origin}/other")
        await expect(other.get_by_role("button", name="Open chat")).to_be_visible()
        await other.clock.fast_forward(21_000)
        await other.get_by_role("button", name="Dismiss").click()
        await expect(other.get_by_text("Need help choosing socks?")).to_have_count(0)

        tomorrow = await context.new_page()  # the first visitor, the next day: shown again
        await tomorrow.clock.install(time=await again.evaluate("Date.now()") + 86_400_000)
        await tomorrow.goto(f"{site.origin}/other")
        await expect(tomorrow.get_by_role("button", name="Open chat")).to_be_visible()
        await tomorrow.clock.fast_forward(21_000)
        await expect(tomorrow.get_by_text("Need help choosing socks?")).to_be_visible()


async def test_offline_outside_hours_with_the_next_opening_and_an_email(
        browser: Browser, make_harness: HarnessFactory, dovecot: Dovecot,
        smtp: SmtpReceiver) -> None:
    clock = OffsetClock()
    at(clock, "2026-12-12 10:00")  # a Saturday: closed until Monday 9:00 (Belgrade)
    mail: dict[str, TomlValue] = {**email_config(dovecot, smtp)}
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site, clock=clock, env=EMAIL_ENV, tables={
            "hours.office": {"timezone": "Europe/Belgrade", **{
                day: ["09:00-17:00"] for day in
                ("monday", "tuesday", "wednesday", "thursday", "friday")}},
            "teams.support": {"hours": "office"},
            "connectors.email": mail})
        context = await browser.new_context(timezone_id="Europe/Belgrade", locale="en-GB")
        page = await context.new_page()
        await page.goto(site.origin)
        await page.get_by_role("button", name="Open chat").click()
        await expect(page.get_by_text("We are offline right now; we are back Monday")) \
            .to_contain_text("09:00")
        await page.get_by_role("textbox", name="Your email address").fill("ann@example.com")
        await open_and_say(page, "Can I still order for Christmas?")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        await screenshot(page, "webchat-offline")
        thread = await webchat_thread(h)
        first = " ".join(m["text"] for m in h.slack.thread(CHANNEL, thread))
        assert "answer by email to ann@example.com (unverified)" in first

        at(clock, "2026-12-14 09:30")  # Monday, open: Dana answers by email; Ann comes back
        assert await h.agent_says(thread, "Yes, until the 20th.") == 200
        [sent] = await smtp.wait_for(1)
        assert sent.rcpt_tos == ["ann@example.com"]
        body = sent.message.get_body(("plain",))
        assert body is not None and "Yes, until the 20th." in body.get_content()
        await h.drained()
        again = await context.new_page()
        await again.goto(site.origin)
        await again.get_by_role("button", name="Open chat").click()
        await expect(chat_log(again).get_by_text("Yes, until the 20th.")).to_be_visible()
        assert await again.get_by_text("We are offline right now").count() == 0

        # Ann answers the mail: the same thread.
        await dovecot.append(customer_mail(
            "Ann <ann@example.com>", "Re: your question", "Great, ordering now.",
            message_id="ann-re@example.com", In_Reply_To=sent.message["Message-ID"]))
        await h.wait_rows("SELECT COUNT(*), COUNT(DISTINCT conversation_id) FROM messages"
                          " WHERE direction = 'in'", [(2, 1)], 15)
        await h.drained()
        assert any("Great, ordering now." in m["text"] for m in h.slack.thread(CHANNEL, thread))
