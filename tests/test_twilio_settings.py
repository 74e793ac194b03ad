"""The [connectors.twilio] contract: the issue's example block passes `bridge check-config`,
and each bad value names its file, dotted key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_settings import BASE, check, one_error, set_secrets, write

SID = "AC" + "0123456789abcdef" * 2
TWILIO = """
[connectors.twilio]
enabled = true
account_sid = "${TWILIO_ACCOUNT_SID}"
auth_token = "${TWILIO_AUTH_TOKEN}"
sms_from = "+15550001111"
whatsapp_from = "whatsapp:+14155238886"
messaging_service_sid = ""
webhook_signing_key = ""
api_base_url = "https://api.twilio.com"
[[connectors.twilio.templates]]
name = "follow_up"
content_sid = "HX..."
"""


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    set_secrets(monkeypatch)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef")


def test_the_documented_block_is_valid(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bridge.toml", BASE + TWILIO)
    code, out, err = check(capsys, "--config", str(path))
    assert code == 0, err
    assert "connectors enabled: telegram, twilio" in out


@pytest.mark.parametrize(("old", "new", "key", "expected"), [
    ('account_sid = "${TWILIO_ACCOUNT_SID}"', 'account_sid = "12345"',
     "connectors.twilio.account_sid", ["AC followed by 32 hex digits"]),
    ('sms_from = "+15550001111"', 'sms_from = "5550001111"', "connectors.twilio.sms_from",
     ["E.164"]),
    ('whatsapp_from = "whatsapp:+14155238886"', 'whatsapp_from = "+14155238886"',
     "connectors.twilio.whatsapp_from", ["whatsapp:+"]),
    ('content_sid = "HX..."', 'content_sid = "MG123"',
     "connectors.twilio.templates[0].content_sid", ["Content SID"]),
    ('name = "follow_up"\n', "", "connectors.twilio.templates[0].name", ["required"]),
    ('messaging_service_sid = ""', 'messaging_service_sid = "MGx"',
     "connectors.twilio.messaging_service_sid", ["MG followed by 32 hex digits"]),
], ids=["account-sid", "sms-from", "whatsapp-from", "content-sid", "template-name",
        "service-sid"])
def test_each_bad_value_names_the_key_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str,
    expected: list[str],
) -> None:
    assert old in TWILIO
    path = write(tmp_path / "bridge.toml", BASE + TWILIO.replace(old, new))
    one_error(capsys, path, key, expected)


def test_a_sender_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TWILIO.replace('sms_from = "+15550001111"\n', "").replace(
        'whatsapp_from = "whatsapp:+14155238886"\n', "")
    path = write(tmp_path / "bridge.toml", BASE + text)
    code, _, err = check(capsys, "--config", str(path))
    assert code == 1 and "set at least one sender" in err and "connectors.twilio" in err
