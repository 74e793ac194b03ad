"""The web chat's settings and language choice: what an admin gets wrong is refused with the
key and the fix; the page's language tag picks one of the site's languages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.webchat.settings import WebchatSettings
from connectors.webchat.texts import TEXTS, language_of, texts_for

SITE: dict[str, Any] = {"id": "www", "allowed_origins": ["https://www.example.com"]}


def settings(**site: Any) -> WebchatSettings:
    return WebchatSettings.model_validate({"sites": [{**SITE, **site}]})


@pytest.mark.parametrize("site, needle", [
    ({"colors": {"primary": "#ffff00", "on_primary": "#ffffff"}}, "WCAG AA needs 4.5:1"),
    ({"colors": {"primary": "blue"}}, "#rrggbb"),
    ({"allowed_origins": ["https://www.example.com/shop"]}, "is not an origin"),
    ({"allowed_origins": []}, "at least 1"),
    ({"id": "Www"}, "lowercase"),
    ({"languages": ["de"]}, "'de' is not one of"),
    ({"texts": {"en": {"hello": "Hi"}}}, "en.hello is not a widget text"),
    ({"require_verification": True}, "needs identity_secret"),
    ({"invitations": [{"url_pattern": "/x", "text": ""}]}, "at least 1 character"),
])
def test_bad_sites_are_refused_with_the_fix(site: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(**site)
    assert needle in str(caught.value)


def test_two_sites_with_one_id_are_refused() -> None:
    with pytest.raises(ValidationError, match="same id"):
        WebchatSettings.model_validate({"sites": [SITE, SITE]})


@pytest.mark.parametrize("tag, offered, chosen", [
    ("sr-Latn-RS", ["en", "sr-Latn", "sr-Cyrl"], "sr-Latn"),
    ("sr", ["en", "sr-Latn", "sr-Cyrl"], "sr-Cyrl"),
    ("sr-RS", ["en", "sr-Cyrl"], "sr-Cyrl"),
    ("hr-HR", ["en", "hr"], "hr"),
    ("sl", ["sl", "en"], "sl"),
    ("de-DE", ["hr", "en"], "hr"),
    ("", ["en"], "en"),
    ("sr_Latn", ["en", "sr-Latn"], "sr-Latn"),
])
def test_the_language_of_a_page(tag: str, offered: list[str], chosen: str) -> None:
    assert language_of(tag, offered) == chosen


def test_every_language_has_every_text_and_overrides_win() -> None:
    assert all(set(table) == set(TEXTS["en"]) for table in TEXTS.values())
    texts = texts_for("hr", {"hr": {"placeholder": "Pitajte nas"}})
    assert texts["placeholder"] == "Pitajte nas" and texts["sent"] == "Poslano"
