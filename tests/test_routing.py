"""Routing rules as pure logic, and what check-config says about teams and rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.console.queue import home_blocks
from bridge.language import LanguageGuess
from bridge.queue import Section, waited
from bridge.registry import settings_registry
from bridge.settings import ConfigError, load_settings
from bridge.teams import Routing, RoutingRule, Team, resolve_teams
from storage.base import QueueEntry
from tests.test_settings import BASE, SECRETS
from vocab.models import ConversationId, InboundMessage

TEAMS = resolve_teams({}, "C0SUPPORT1", "UTC") | {
    "billing": Team("billing", "C0BILLING1", frozenset(), "UTC", "en"),
    "balkan": Team("balkan", "C0BALKAN01", frozenset(), "Europe/Belgrade", "sr"),
    "uk": Team("uk", "C0UK000001", frozenset(), "Europe/London", "en"),
}


def msg(text: str, connector: str = "telegram", **kw: str) -> InboundMessage:
    return InboundMessage(connector=connector, platform_message_id="1", address="a",
                          sender_name="Ann", text=text, **kw)


def route(rules: list[RoutingRule], item: InboundMessage,
          detect: LanguageGuess | None = None) -> str:
    return Routing(TEAMS, rules, detect=detect).choose(item).name


def test_first_match_wins_and_no_match_goes_to_support() -> None:
    rules = [RoutingRule(team="billing", keywords=["Invoice", "račun"]),
             RoutingRule(team="uk", connectors=["twilio"], inboxes=["+441234567890"])]
    assert route(rules, msg("my INVOICE!")) == "billing"
    assert route(rules, msg("Gdje je moj RACUN?")) == "billing"  # accents and case folded
    assert route(rules, msg("invoices")) == "support"  # whole words only
    assert route(rules, msg("hi", "twilio", inbox="whatsapp:+441234567890")) == "uk"
    assert route(rules, msg("hi", "twilio", inbox="+15550001111")) == "support"
    assert route(rules, msg("hi", "telegram", inbox="+441234567890")) == "support"
    assert route(rules, msg("invoice", "twilio", inbox="+441234567890")) == "billing"


def test_every_condition_of_a_rule_must_hold() -> None:
    rules = [RoutingRule(team="uk", connectors=["email"], keywords=["refund"])]
    assert route(rules, msg("refund", "email")) == "uk"
    assert route(rules, msg("refund", "telegram")) == "support"
    assert route(rules, msg("hello", "email")) == "support"


def test_the_platform_hint_comes_before_a_guess() -> None:
    asked: list[str] = []

    def detect(text: str, languages: frozenset[str], fallback: str) -> frozenset[str]:
        asked.append(text)
        return frozenset({"de"})
    rules = [RoutingRule(team="balkan", languages=["sr", "hr", "bs"])]
    routing = Routing(TEAMS, rules, detect=detect)
    assert routing.choose(msg("Zdravo", language="sr")).name == "balkan"
    assert asked == []
    assert routing.choose(msg("Zdravo")).name == "support"  # the detector said de
    assert asked == ["Zdravo"]


def test_the_detector_guesses_among_the_rules_languages() -> None:
    guess = LanguageGuess()
    rules = [RoutingRule(team="balkan", languages=["sr", "hr", "bs"]),
             RoutingRule(team="uk", languages=["en"])]
    assert route(rules, msg("Hello, my parcel has not arrived yet"), guess) == "uk"
    assert route(rules, msg("Dobar dan, gdje je moja pošiljka? Hvala"), guess) == "balkan"
    # Too short to be sure: the default team's language (en) is taken, not a guess.
    assert guess("ok", frozenset({"sr", "hr", "bs"}), "en") == {"en"}
    assert route(rules, msg("Hvala!"), guess) == "uk"
    # Close languages: a rule naming only one of them does not take a text that may be another.
    only = [RoutingRule(team="balkan", languages=["hr"])]
    said = "Dobar dan, gdje je moja pošiljka? Hvala"
    assert guess(said, frozenset({"hr"}), "en") == {"hr", "bs", "sr"}  # Latin script
    assert route(only, msg(said), guess) == "support"


def check(tmp_path: Path, extra: str) -> list[str]:
    path = tmp_path / "bridge.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    try:
        load_settings(path, settings_registry(), environ=SECRETS, dotenv_dir=tmp_path)
    except ConfigError as exc:
        return [f"{p.key}: {p.message}" for p in exc.problems if p.severity == "error"]
    return []


def test_check_config_accepts_teams_and_rules(tmp_path: Path) -> None:
    assert check(tmp_path, """
[teams.billing]
channel = "C0BILLING1"
members = ["U0AGENT1"]
timezone = "Europe/Paris"
language = "fr"
[[routing.rules]]
team = "billing"
connectors = ["telegram"]
keywords = ["invoice"]
languages = ["fr"]
""") == []


@pytest.mark.parametrize(("extra", "expected"), [
    ('[[routing.rules]]\nteam = "sales"\nkeywords = ["x"]\n',
     "routing.rules[0].team: names an unknown team 'sales'"),
    ('[[routing.rules]]\nteam = "support"\nconnectors = ["telgram"]\n',
     "routing.rules[0].connectors: names an unknown connector 'telgram'"),
    ('[teams.billing]\nchannel = "#billing"\n',
     "teams.billing.channel: does not look like a Slack channel id (C0123456789)"),
    ('[teams.billing]\nmembers = ["U0AGENT1"]\n', "teams.billing.channel: is missing"),
    ('[teams.billing]\nchannel = "C0SUPPORT1"\n',
     "teams.billing.channel: is also the channel of team support"),
    ('[[routing.rules]]\nteam = "support"\nlanguages = ["english"]\n',
     "routing.rules[0].languages"),
])
def test_check_config_refuses_what_cannot_work(tmp_path: Path, extra: str,
                                               expected: str) -> None:
    assert any(p.startswith(expected) for p in check(tmp_path, extra)), check(tmp_path, extra)


def test_the_default_team_is_the_support_channel_unless_set() -> None:
    assert resolve_teams({}, "C0SUPPORT1", "UTC")["support"].channel == "C0SUPPORT1"


def entry(n: int, since: float | None, channel: str = "C0SUPPORT1") -> QueueEntry:
    return QueueEntry(conversation_id=ConversationId(n), slack_channel=channel,
                      slack_thread_ts=f"17000000{n:02d}.000100", assignee=None,
                      customer=f"c{n}", connector="telegram", created_at=0.0,
                      waiting_since=since)


def test_waits_read_as_people_say_them() -> None:
    now = 1_000_000.0
    assert [waited(entry(1, now - s), now) for s in (59, 42 * 60, 3 * 3600 + 300,
                                                     2 * 86400 + 4 * 3600)] == [
        "0 min", "42 min", "3 h 5 min", "2 d 4 h"]
    assert waited(entry(2, None), now) == "answered"


def test_the_home_tab_stays_within_slacks_100_blocks() -> None:
    sections = [Section(f"Waiting in team{i}", f"team{i}", (entry(i, 0.0),))
                for i in range(80)]
    blocks = home_blocks(sections, 100.0, lambda ts, ch: f"https://x/{ch}/{ts}")
    assert len(blocks) <= 100 and blocks[0]["type"] == "header"
