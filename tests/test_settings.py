"""The config contract: `bridge check-config` names the dotted key and the fix for each problem."""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
import typing
from pathlib import Path

import aiohttp
import pytest
from pydantic import BaseModel

from bridge.app import Bridge
from bridge.cli import main
from bridge.registry import settings_registry
from bridge.settings import LoadedConfig, Settings, load_settings
from bridge.standins import SlackStandin, TelegramStandin
from connectors.telegram.settings import TelegramSettings
from tests.conftest import bridge_env, free_socket, write_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "bridge.example.toml"
SECRETS = {"SLACK_BOT_TOKEN": "xoxb-from-env", "SLACK_SIGNING_SECRET": "signing-from-env",
           "TELEGRAM_BOT_TOKEN": "123456:AAfrom-env_0123456789abcdefghijklmn",
           "TELEGRAM_WEBHOOK_SECRET": "hook_from_env"}
BASE = """
[server]
port = 8080
public_url = "https://support.acme.test"
[slack]
bot_token = "${SLACK_BOT_TOKEN}"
signing_secret = "${SLACK_SIGNING_SECRET}"
support_channel = "C0SUPPORT1"
[connectors.telegram]
enabled = true
bot_token = "${TELEGRAM_BOT_TOKEN}"
webhook_secret = "${TELEGRAM_WEBHOOK_SECRET}"
"""


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No secrets, no $BRIDGE_CONFIG, and a working directory without .env or bridge.toml."""
    for name in [*SECRETS, "BRIDGE_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def set_secrets(monkeypatch: pytest.MonkeyPatch, *, but: str = "") -> None:
    for name, value in SECRETS.items():
        if name != but:
            monkeypatch.setenv(name, value)


def write(path: Path, text: str = BASE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-config", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(capsys: pytest.CaptureFixture[str], path: Path, key: str,
              expected: list[str]) -> str:
    """check-config fails with exactly one error, naming the file, the key and a fix that
    contains each of `expected`; returns stderr."""
    code, out, err = check(capsys, "--config", str(path))
    assert code == 1 and out == ""
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line.startswith(f"error: {path}: {key}: ") and "(fix: " in line, line
    for text in expected:
        assert text in line
    return err


def load(path: Path) -> LoadedConfig:
    """As `bridge` loads it: real environment, .env from the working directory."""
    return load_settings(path, settings_registry())


def test_shipped_example_is_valid_once_its_placeholders_are_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch)
    mine = write(tmp_path / "bridge.toml", EXAMPLE.read_text(encoding="utf-8")
                 .replace("https://support.example.com", "https://support.acme.test")
                 .replace('"C0123456789"', '"C0SUPPORT1"'))
    code, out, err = check(capsys, "--config", str(mine))
    assert code == 0, err
    assert f"{mine}: OK" in out and "connectors enabled: telegram" in out
    assert "error:" not in err


def test_the_examples_placeholders_are_errors_each_named_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example as shipped, with .env.example copied to .env: each placeholder left in
    place is one error naming its key; nothing else is an error."""
    (tmp_path / ".env").write_text(
        (EXAMPLE.parent.parent / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    code, out, err = check(capsys, "--config", str(EXAMPLE))
    assert code == 1 and out == ""
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert [ln.split(": ")[2] for ln in errors] == [
        "server.public_url", "slack.bot_token", "slack.signing_secret", "slack.support_channel",
        "connectors.telegram.bot_token", "connectors.telegram.webhook_secret"], err
    assert all("is still the example's placeholder" in ln and "(fix: put " in ln
               for ln in errors)
    assert f"{EXAMPLE}: 6 error(s)" in err


@pytest.mark.parametrize(("value", "fix"), [
    ('max_attempts = "8"', "write a number without quotes"),
    ("max_attempts = 8.5", "correct the value"),
    ("max_attempts = true", "write a number without quotes"),
])
def test_numbers_are_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str], value: str, fix: str) -> None:
    set_secrets(monkeypatch)
    path = write(tmp_path / "bridge.toml", BASE + f"[outbox]\n{value}\n")
    one_error(capsys, path, "outbox.max_attempts", [fix])


def test_booleans_are_booleans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    set_secrets(monkeypatch)
    path = write(tmp_path / "bridge.toml", BASE.replace("enabled = true", 'enabled = "yes"'))
    one_error(capsys, path, "connectors.telegram.enabled",
              ["write enabled = true or enabled = false, without quotes"])


@pytest.mark.parametrize(("variable", "key"), [
    ("SLACK_BOT_TOKEN", "slack.bot_token"),
    ("SLACK_SIGNING_SECRET", "slack.signing_secret"),
    ("TELEGRAM_BOT_TOKEN", "connectors.telegram.bot_token"),
])
def test_an_empty_secret_names_its_variable_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    variable: str, key: str,
) -> None:
    set_secrets(monkeypatch)
    monkeypatch.setenv(variable, "")
    path = write(tmp_path / "bridge.toml")
    err = one_error(capsys, path, key, [f"environment variable {variable} is empty",
                                        f"give {variable} its value"])
    assert f"{path}: 1 error(s), 0 warning(s)" in err


@pytest.mark.parametrize(("key", "old", "new", "message"), [
    ("slack.bot_token", "xoxb-from-env", "xoxp-user-token", "is not a bot token"),
    ("connectors.telegram.bot_token", "123456:AAfrom-env_0123456789abcdefghijklmn",
     "123456:short", "is not shaped like a bot token"),
])
def test_a_token_shape_is_an_error_only_against_the_real_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    key: str, old: str, new: str, message: str,
) -> None:
    set_secrets(monkeypatch)
    monkeypatch.setenv(next(k for k, v in SECRETS.items() if v == old), new)
    real = write(tmp_path / "real.toml")
    one_error(capsys, real, key, [message])
    table = "[slack]" if key.startswith("slack") else "[connectors.telegram]"
    standin = write(tmp_path / "standin.toml", BASE.replace(
        table, f'{table}\napi_base_url = "http://127.0.0.1:9/x"'))
    code, _, err = check(capsys, "--config", str(standin))
    assert code == 0, err
    assert f"warning: {standin}: {key}: {message}" in err and "only a warning" in err


@pytest.mark.parametrize(("old", "new", "key", "expected"), [
    ("port = 8080", "port = 8080\nprot = 1", "server.prot",
     ["unknown key", "remove `prot`", "known keys here: allow_fake_clock, body_timeout, host,"]),
    ('signing_secret = "${SLACK_SIGNING_SECRET}"\n', "", "slack.signing_secret",
     ["is required when slack.mode = \"http\"", "SLACK_SIGNING_SECRET"]),
    ("port = 8080", 'port = "x"', "server.port", ["valid integer"]),
    ('public_url = "https://support.acme.test"', 'public_url = "support.acme.test"',
     "server.public_url", ["absolute http(s) URL"]),
    ('webhook_secret = "${TELEGRAM_WEBHOOK_SECRET}"\n', "",
     "connectors.telegram.webhook_secret", ["is required in webhook mode"]),
    ('webhook_secret = "${TELEGRAM_WEBHOOK_SECRET}"', 'webhook_secret = "has spaces"',
     "connectors.telegram.webhook_secret", ["1-256 characters"]),
    ('signing_secret = "${SLACK_SIGNING_SECRET}"\n', 'mode = "http"\n', "slack.signing_secret",
     ["is required when slack.mode = \"http\"", "mode = \"socket\""]),
    ('signing_secret = "${SLACK_SIGNING_SECRET}"\n', 'mode = "socket"\n', "slack.app_token",
     ["is required when slack.mode = \"socket\"", "SLACK_APP_TOKEN", "connections:write"]),
    ('signing_secret = "${SLACK_SIGNING_SECRET}"\n', 'mode = "socket"\napp_token = "xoxb-1"\n',
     "slack.app_token", ["is not an app-level token (they start with xapp-)"]),
], ids=["unknown-key", "missing-key", "wrong-type", "bad-url", "no-webhook-secret",
        "bad-webhook-secret", "http-mode-no-signing-secret", "socket-mode-no-app-token",
        "socket-mode-bot-token-as-app-token"])
def test_each_error_names_the_key_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    old: str, new: str, key: str, expected: list[str],
) -> None:
    set_secrets(monkeypatch)
    assert old in BASE
    path = write(tmp_path / "bridge.toml", BASE.replace(old, new))
    err = one_error(capsys, path, key, expected)
    assert f"{path}: 1 error(s)" in err


def test_socket_mode_needs_an_app_token_and_no_signing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch, but="SLACK_SIGNING_SECRET")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-from-env")
    text = BASE.replace('signing_secret = "${SLACK_SIGNING_SECRET}"\n',
                        'mode = "socket"\napp_token = "${SLACK_APP_TOKEN}"\n')
    code, out, err = check(capsys, "--config", str(write(tmp_path / "bridge.toml", text)))
    assert code == 0, err
    assert "OK" in out
    assert load(tmp_path / "bridge.toml").settings.slack.app_token == "xapp-1-from-env"


def test_unset_secret_names_the_variable_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch, but="SLACK_BOT_TOKEN")
    path = write(tmp_path / "bridge.toml")
    code, _, err = check(capsys, "--config", str(path))
    assert code == 1
    assert (f"error: {path}: slack.bot_token: environment variable SLACK_BOT_TOKEN is not set"
            in err)
    assert "export SLACK_BOT_TOKEN=..." in err and ".env" in err


def test_every_problem_is_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch, but="SLACK_SIGNING_SECRET")
    text = BASE.replace("port = 8080", 'port = "x"\nprot = 1')
    code, _, err = check(capsys, "--config", str(write(tmp_path / "bridge.toml", text)))
    assert code == 1
    for key in ("server.port", "server.prot", "slack.signing_secret"):
        assert f": {key}: " in err
    assert "3 error(s)" in err


def test_invalid_toml_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch)
    path = write(tmp_path / "conf" / "broken.toml", BASE.replace("[slack]", "[slack"))
    code, _, err = check(capsys, "--config", str(path))
    assert code == 1
    assert f"error: {path}: not valid TOML" in err


def test_plain_http_public_url_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch)
    text = BASE.replace("https://support.acme.test", "http://127.0.0.1:8080").replace(
        "enabled = true", "enabled = true\nregister_webhook = false")
    path = write(tmp_path / "bridge.toml", text)
    code, out, err = check(capsys, "--config", str(path))
    assert code == 0
    assert f"{path}: OK (1 warning(s))" in out
    assert err.startswith(f"warning: {path}: server.public_url: is not HTTPS")


def test_plain_http_public_url_is_an_error_when_telegram_would_be_pointed_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch)
    path = write(tmp_path / "bridge.toml",
                 BASE.replace("https://support.acme.test", "http://support.acme.test"))
    err = one_error(capsys, path, "server.public_url",
                    ["Telegram would be told to send its webhooks there", "register_webhook"])
    assert "warning:" not in err  # not also the plain-HTTP warning


def test_dotenv_in_the_working_directory_supplies_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "etc" / "bridge.toml")
    (tmp_path / ".env").write_text(
        "# secrets\nSLACK_BOT_TOKEN=xoxb-dotenv\nexport SLACK_SIGNING_SECRET='sig dotenv'\n"
        'TELEGRAM_BOT_TOKEN="42424:dotenv_0123456789abcdefghijklmnopqr"\n\n'
        "TELEGRAM_WEBHOOK_SECRET=hook\n", encoding="utf-8")
    code, _, err = check(capsys, "--config", str(path))
    assert code == 0, err
    settings = load(path)
    assert settings.settings.slack.bot_token == "xoxb-dotenv"
    assert settings.settings.slack.signing_secret == "sig dotenv"
    telegram = settings.connectors["telegram"]
    assert isinstance(telegram, TelegramSettings)
    assert telegram.bot_token == "42424:dotenv_0123456789abcdefghijklmnopqr"


def test_real_environment_overrides_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-dotenv\n", encoding="utf-8")
    assert load(write(tmp_path / "bridge.toml")).settings.slack.bot_token == "xoxb-from-env"


def test_config_path_defaults_to_env_then_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch)
    code, _, err = check(capsys)
    assert code == 1 and "bridge.toml: config file not found" in err and "BRIDGE_CONFIG" in err

    write(tmp_path / "bridge.toml")
    code, out, _ = check(capsys)
    assert code == 0 and out.startswith("bridge.toml: OK")

    write(tmp_path / "bridge.toml", "not toml [")  # $BRIDGE_CONFIG wins over ./bridge.toml
    elsewhere = write(tmp_path / "elsewhere" / "chosen.toml")
    monkeypatch.setenv("BRIDGE_CONFIG", str(elsewhere))
    code, out, _ = check(capsys)
    assert code == 0 and out.startswith(f"{elsewhere}: OK")

    monkeypatch.setenv("BRIDGE_CONFIG", str(tmp_path / "bridge.toml"))  # --config wins
    code, out, _ = check(capsys, "--config", str(elsewhere))
    assert code == 0 and out.startswith(f"{elsewhere}: OK")


def test_public_url_keeps_its_path_and_drops_a_trailing_slash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    text = BASE.replace("https://support.acme.test", "https://example.com/help/")
    assert load(write(tmp_path / "bridge.toml", text)).settings.server.public_url == (
        "https://example.com/help")


async def test_webhook_is_registered_under_the_public_url_prefix(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
    session: aiohttp.ClientSession,
) -> None:
    sock = free_socket()
    path = write_config(tmp_path / "bridge.toml", port=sock.getsockname()[1],
                        db=tmp_path / "b.db", slack=slack, telegram=telegram,
                        overrides={"server": {"public_url": "https://proxy.example/support/"}})
    loaded = load_settings(path, settings_registry(),
                           environ=bridge_env(slack), dotenv_dir=tmp_path)
    bridge = Bridge(loaded, sock=sock)
    await bridge.start()
    try:
        assert telegram.webhook_url == "https://proxy.example/support/webhooks/telegram"
    finally:
        await bridge.stop()


def test_disabled_connector_with_missing_secrets_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_secrets(monkeypatch, but="TELEGRAM_BOT_TOKEN")
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    enabled = write(tmp_path / "on.toml")
    code, _, err = check(capsys, "--config", str(enabled))
    assert code == 1 and f"error: {enabled}: connectors.telegram.bot_token:" in err

    disabled = write(tmp_path / "off.toml", BASE.replace("enabled = true", "enabled = false"))
    code, out, err = check(capsys, "--config", str(disabled))
    assert code == 0, err
    assert "connectors enabled: none" in out
    assert "error:" not in err and "TELEGRAM_BOT_TOKEN" in err


def test_console_script_check_config(tmp_path: Path) -> None:
    script = Path(sysconfig.get_path("scripts")) / "bridge"
    assert script.is_file(), f"the `bridge` console script is not installed at {script}"
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "BRIDGE_CONFIG"}
    write(tmp_path / "bridge.toml")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), "check-config"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30, check=False)

    failed = run()
    assert failed.returncode == 1
    assert "slack.bot_token: environment variable SLACK_BOT_TOKEN is not set" in failed.stderr
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()),
                                   encoding="utf-8")
    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("bridge.toml: OK") and "connectors enabled: telegram" in ok.stdout


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    """Every dotted key of a settings model (tables of models walked into)."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        nested = [a for a in (field.annotation, *typing.get_args(field.annotation))
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        nested += [a for arg in typing.get_args(field.annotation)
                   for a in typing.get_args(arg) if isinstance(a, type)
                   and issubclass(a, BaseModel)]  # list[PageSettings]
        found += _keys(nested[0], f"{prefix}{key}.") if nested else [prefix + key]
    return found


def test_the_example_config_shows_every_key() -> None:
    """check-config's fixes say `config/bridge.example.toml documents every key`: each key
    appears there, set or commented out, e.g. the numbers and Page usernames that handoff
    invitations name."""
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = [k for k in _keys(Settings, "") if not k.startswith("connectors")]
    for name, model in settings_registry().items():
        keys += _keys(model, f"connectors.{name}.")
    missing = [k for k in keys if not re.search(
        rf"^[# ]*{re.escape(k.rsplit('.', 1)[-1])}\s*=", text, re.MULTILINE)]
    assert missing == []


README = EXAMPLE.parent.parent / "README.md"


def test_the_readme_configuration_reference_lists_every_key() -> None:
    """Each key of every settings model has a row in the README's "Configuration reference"
    table (`teams.<name>.x` and `routing.rules[].x` rows count for `teams.x`, `routing.rules.x`;
    a list of tables such as `connectors.messenger.pages` may be described in its own row)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration reference"):]
    section = section[:section.index("\n## ", 1)]
    rows: set[str] = set()
    for cell in re.findall(r"^\| (`[^|]+`) \|", section, re.MULTILINE):
        first, *siblings = re.findall(r"`([^`]+)`", cell)  # `a.b` / `c`: c is a sibling of b
        first = first.replace("<name>.", "").replace("[]", "")
        rows |= {first} | {f"{first.rsplit('.', 1)[0]}.{s}" for s in siblings}
    keys = [k for k in _keys(Settings, "") if not k.startswith("connectors")]
    for name, model in settings_registry().items():
        keys += _keys(model, f"connectors.{name}.")
    missing = [k for k in keys if k not in rows and k.rsplit(".", 1)[0] not in rows]
    assert missing == []
