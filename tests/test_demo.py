"""`bridge demo`, as the README's first command runs it: exits 0 on its own, well within 45 s,
and prints what Slack would show as readable text."""

from __future__ import annotations

import re
import time

from tests.helpers_proc import run_cli


async def test_the_demo_plays_every_act_and_reads_as_slack_shows_it() -> None:
    started = time.monotonic()
    done = await run_cli(["demo"], env={}, timeout=45)
    elapsed = time.monotonic() - started
    assert done.code == 0, done.stdout + done.stderr
    assert elapsed < 45
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"demo finished in \d+\.\ds", lines[-2]), lines[-2:]
    assert lines[-1].startswith("Next: connect a real workspace") and "README" in lines[-1]
    for act in ("What the customer saw on Telegram:", "WhatsApp, a day later:",
                "What Bob saw on WhatsApp:", "Ben, on Telegram: who has it, and where it stands:",
                "Carla, Telegram -> WhatsApp:", "Two team channels, #support and #billing:",
                "Gus, a response-time target (team urgent: first answer within 10 minutes):",
                "Kerry, on WhatsApp through Meta's Cloud API:",
                "Saturday 10:00, the shop team is closed (open Monday to Friday, 9-17):",
                "A canned reply, filled for the customer:",
                "Mila, on Telegram: how did it go?"):
        assert act in lines
    # Slack markup an agent never sees as such: mentions, dates, emoji codes, bold markers.
    raw = [ln for ln in lines if re.search(r"<[@!#][^>]*>|:[a-z][a-z0-9_+-]*:|\*[^*\s][^*]*\*", ln)]
    assert raw == []
    assert "  [bridge] 🔒 Closed by @Dana." in lines
    assert "  Dana wrote '!transfer billing' in Frank's #support thread, which ends:" in lines
    assert "  Frank got on Telegram: Dana: Billing here: a refund is on its way." in lines
    assert any(ln.startswith("  Nine minutes later (a moved clock): ") and "🟡 first answer due"
               in ln for ln in lines)
    assert ("  Greta got: Support: Thank you for your message. We are closed right now; we will "
            "answer from Monday 9:00.") in lines
    assert ("  Dana clicked Send; Gina got on Telegram: Dana: Hi Gina, this is Dana: order "
            "A-1042 left our depot today and arrives tomorrow.") in lines
    assert "  [bridge] ⭐ 4/5 from Mila" in lines  # a CSAT answer from a Telegram button
