"""The [connectors.messenger] table: the issue's block passes `bridge check-config`; defaults
and the checks on pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.messenger.settings import MessengerSettings
from tests.test_settings import BASE, check, set_secrets, write

MESSENGER = """
[connectors.messenger]
enabled = true
app_secret = "${MESSENGER_APP_SECRET}"
verify_token = "${MESSENGER_VERIFY_TOKEN}"
graph_api_version = "v25.0"
graph_base_url = "https://graph.facebook.com"   # only tests change it
human_agent_tag = false
personas = false
[[connectors.messenger.pages]]
id = "1234567890"
access_token = "${MESSENGER_PAGE_TOKEN}"
"""

PAGE = {"id": "1234567890", "access_token": "EAAB-token"}


def settings(**keys: Any) -> MessengerSettings:
    return MessengerSettings.model_validate(
        {"app_secret": "s", "verify_token": "v", "pages": [PAGE], **keys})


def test_the_documented_block_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    set_secrets(monkeypatch)
    for name in ("MESSENGER_APP_SECRET", "MESSENGER_VERIFY_TOKEN", "MESSENGER_PAGE_TOKEN"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    code, _, err = check(capsys, "--config", str(write(tmp_path / "b.toml", BASE + MESSENGER)))
    assert code == 0, err
    monkeypatch.delenv("MESSENGER_PAGE_TOKEN")
    code, _, err = check(capsys, "--config", str(write(tmp_path / "b.toml", BASE + MESSENGER)))
    assert code != 0 and "MESSENGER_PAGE_TOKEN" in err


def test_defaults_of_the_contract_keys() -> None:
    s = settings()
    assert (s.enabled, s.graph_api_version, s.graph_base_url, s.human_agent_tag, s.personas) == (
        True, "v25.0", "https://graph.facebook.com", False, False)
    assert s.page("1234567890") is not None and s.page("42") is None


def test_the_tag_can_be_enabled_per_page() -> None:
    s = settings(pages=[PAGE, {"id": "2", "access_token": "t", "human_agent_tag": True}])
    assert [s.tag_allowed(p) for p in s.pages] == [False, True]
    s = settings(human_agent_tag=True, pages=[{**PAGE, "human_agent_tag": False}])
    assert s.tag_allowed(s.pages[0]) is False


@pytest.mark.parametrize("keys", [
    {"pages": []},
    {"pages": [PAGE, PAGE]},
    {"pages": [{"id": "my-page", "access_token": "t"}]},
    {"pages": [{"id": "1", "access_token": ""}]},
    {"graph_api_version": "25"},
    {"graph_base_url": "graph.facebook.com"},
    {"app_id": "abc"},
    {"pages": [{"id": True, "access_token": "t"}]},
    {"unknown": 1},
])
def test_mistakes_are_refused(keys: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**keys)


def test_ids_written_as_toml_integers_are_the_same_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    s = settings(app_id=900000000000001, pages=[{"id": 1234567890, "access_token": "t"}])
    assert (s.app_id, s.pages[0].id) == ("900000000000001", "1234567890")
    assert s.page("1234567890") is s.pages[0]
    set_secrets(monkeypatch)
    for name in ("MESSENGER_APP_SECRET", "MESSENGER_VERIFY_TOKEN", "MESSENGER_PAGE_TOKEN"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    unquoted = MESSENGER.replace('id = "1234567890"', "id = 1234567890")
    code, _, err = check(capsys, "--config", str(write(tmp_path / "b.toml", BASE + unquoted)))
    assert code == 0, err
