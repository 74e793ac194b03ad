"""The [connectors.whatsapp] table: the documented block passes `bridge check-config`, mistakes
name the file, the key and a fix; and continuity: `!handoff whatsapp` and the same phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.whatsapp.settings import WhatsAppSettings
from tests.test_settings import BASE, check, one_error, set_secrets, write

WHATSAPP = """
[connectors.whatsapp]
enabled = true
app_secret = "${WHATSAPP_APP_SECRET}"
verify_token = "${WHATSAPP_VERIFY_TOKEN}"
access_token = "${WHATSAPP_ACCESS_TOKEN}"
business_account_id = "102290129340398"
graph_api_version = "v25.0"
graph_base_url = "https://graph.facebook.com"
[[connectors.whatsapp.phone_numbers]]
phone_number_id = "106540352242922"
number = "+1 555 078 3881"
"""
NUMBER = {"phone_number_id": "106540352242922", "number": "+15550783881"}
ENV = ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN")


def settings(**keys: Any) -> WhatsAppSettings:
    return WhatsAppSettings.model_validate(
        {"app_secret": "s", "verify_token": "v", "access_token": "t",
         "business_account_id": "1", "phone_numbers": [NUMBER], **keys})


def test_the_documented_block_is_valid_and_a_missing_token_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    set_secrets(monkeypatch)
    for name in ENV:
        monkeypatch.setenv(name, f"{name.lower()}-value")
    code, out, err = check(capsys, "--config", str(write(tmp_path / "b.toml", BASE + WHATSAPP)))
    assert code == 0 and "whatsapp" in out, err
    monkeypatch.delenv("WHATSAPP_ACCESS_TOKEN")
    code, _, err = check(capsys, "--config", str(write(tmp_path / "b.toml", BASE + WHATSAPP)))
    assert code != 0 and "WHATSAPP_ACCESS_TOKEN" in err


def test_a_phone_number_instead_of_its_id_names_the_key_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    set_secrets(monkeypatch)
    for name in ENV:
        monkeypatch.setenv(name, "x")
    wrong = WHATSAPP.replace('phone_number_id = "106540352242922"',
                             'phone_number_id = "+15550783881"')
    one_error(capsys, write(tmp_path / "b.toml", BASE + wrong),
              "connectors.whatsapp.phone_numbers[0].phone_number_id", ["Phone number ID"])


def test_defaults_numbers_and_wa_me() -> None:
    s = settings(business_account_id=102290129340398,
                 phone_numbers=[{"phone_number_id": 106540352242922,
                                 "number": "+1 (555) 078-3881"}])
    assert (s.enabled, s.graph_api_version, s.graph_base_url, s.read_receipts) == (
        True, "v25.0", "https://graph.facebook.com", True)
    assert s.business_account_id == "102290129340398"
    [number] = s.phone_numbers
    assert number.number == "+15550783881" and number.wa_me == "https://wa.me/15550783881"
    assert s.number("106540352242922") is number and s.number("1") is None


@pytest.mark.parametrize("keys", [
    {"phone_numbers": []},
    {"phone_numbers": [NUMBER, NUMBER]},
    {"phone_numbers": [{**NUMBER, "number": "5550783881"}]},
    {"business_account_id": "waba"},
    {"graph_api_version": "25"},
    {"graph_base_url": "graph.facebook.com"},
    {"access_token": ""},
    {"unknown": 1},
])
def test_mistakes_are_refused(keys: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        settings(**keys)
