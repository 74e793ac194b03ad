"""`bridge check-config --online` asks each platform (here: its stand-in) whether the
credentials work, says what it answered, and shows no secret."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bridge.standins import MessengerStandin, SlackStandin, TelegramStandin, TwilioStandin
from bridge.standins.config import TomlValue
from bridge.standins.messenger import DEFAULT_APP_SECRET
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from bridge.standins.whatsapp import DEFAULT_TOKEN, DEFAULT_WABA, WhatsAppStandin
from tests.conftest import CHANNEL, TG_TOKEN, bridge_env, write_config
from tests.dovecot import Dovecot
from tests.helpers_messenger import PAGE_A, TOKEN_A, VERIFY_TOKEN
from tests.helpers_proc import CliResult, run_cli
from tests.mailservers import EMAIL_ENV, SmtpReceiver, email_config


async def check(tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
                env: dict[str, str] | None = None,
                **tables: Mapping[str, TomlValue]) -> CliResult:
    config = write_config(tmp_path / "bridge.toml", port=0, db=tmp_path / "b.db", slack=slack,
                          telegram=telegram, overrides=tables)
    return await run_cli(["check-config", "--online", "--config", str(config)],
                         env={**bridge_env(slack), **(env or {})}, cwd=tmp_path)


async def test_every_platform_answers(tmp_path: Path, slack: SlackStandin,
                                      telegram: TelegramStandin) -> None:
    async with TwilioStandin() as twilio, MessengerStandin(pages={PAGE_A: TOKEN_A}) as meta, \
            WhatsAppStandin(numbers=("106540352242922",)) as wa:
        twilio_table: dict[str, TomlValue] = {
            "enabled": True, "account_sid": DEFAULT_ACCOUNT_SID,
            "auth_token": "${TWILIO_AUTH_TOKEN}", "sms_from": "+15550001111",
            "api_base_url": twilio.base_url}
        page: dict[str, TomlValue] = {"id": PAGE_A, "access_token": "${MESSENGER_PAGE_TOKEN}"}
        messenger_table: dict[str, TomlValue] = {
            "enabled": True, "app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN,
            "graph_base_url": meta.base_url, "pages": [page]}
        whatsapp_table: dict[str, TomlValue] = {
            "enabled": True, "app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN,
            "access_token": "${WHATSAPP_ACCESS_TOKEN}", "business_account_id": DEFAULT_WABA,
            "graph_base_url": wa.base_url,
            "phone_numbers": [{"phone_number_id": "106540352242922", "number": "+15550783881"}]}
        done = await check(
            tmp_path, slack, telegram,
            env={"MESSENGER_PAGE_TOKEN": TOKEN_A, "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
                 "WHATSAPP_ACCESS_TOKEN": DEFAULT_TOKEN},
            **{"connectors.twilio": twilio_table, "connectors.messenger": messenger_table,
               "connectors.whatsapp": whatsapp_table})
    assert done.code == 0, done.stderr
    online = [line for line in done.stdout.splitlines() if ": online: " in line]
    assert online == [
        f"ok: online: slack: bot bridge ({slack.bot_user_id}) in Stand-in "
        f"({slack.team_id})",
        f"ok: online: slack channel: {CHANNEL} (#{CHANNEL.lower()}): the app is a member",
        "ok: online: telegram: bot @bridge_standin_bot (123456)",
        "ok: online: twilio: account 'Stand-in account' (active)",
        f"ok: online: messenger page {PAGE_A}: 'Stand-in Page {PAGE_A}'",
        "ok: online: whatsapp number 106540352242922: 'Stand-in Business' (+1 555-078-3881)",
    ]
    assert [c.method for c in slack.calls] == ["auth.test", "conversations.info"]
    assert slack.calls_to("chat.postMessage") == [] and telegram.calls_to("sendMessage") == []


async def test_refusals_are_errors_and_show_no_secret(tmp_path: Path, slack: SlackStandin
                                                      ) -> None:
    slack.fail_next("auth.test", status=200, error="invalid_auth")
    async with TelegramStandin(token="42:another") as telegram:
        done = await check(tmp_path, slack, telegram)
    assert done.code == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: online:")]
    assert errors == ["error: online: slack: auth.test refused the bot token (invalid_auth)",
                      "error: online: telegram: getMe answered 401: Unauthorized"]
    assert TG_TOKEN not in done.stdout + done.stderr
    assert str(slack.bot_token) not in done.stdout + done.stderr


async def test_the_mail_servers_take_the_logins(tmp_path: Path, slack: SlackStandin,
                                                telegram: TelegramStandin, dovecot: Dovecot,
                                                smtp: SmtpReceiver) -> None:
    done = await check(tmp_path, slack, telegram, env=EMAIL_ENV,
                       **{"connectors.email": email_config(dovecot, smtp)})
    assert done.code == 0, done.stderr
    assert f"ok: online: email imap: login as {dovecot.user} accepted" in done.stdout
    assert f"ok: online: email smtp: 127.0.0.1:{smtp.port} accepted the login" in done.stdout

    wrong = {**EMAIL_ENV, "EMAIL_IMAP_PASSWORD": "not-the-password"}
    done = await check(tmp_path, slack, telegram, env=wrong,
                       **{"connectors.email": email_config(dovecot, smtp)})
    assert done.code == 1
    assert f"error: online: email imap: login as {dovecot.user} refused" in done.stderr
    assert "not-the-password" not in done.stdout + done.stderr


async def test_an_alerts_channel_is_checked_too(tmp_path: Path, slack: SlackStandin,
                                                telegram: TelegramStandin) -> None:
    done = await check(tmp_path, slack, telegram,
                       **{"teams.support": {"alerts_channel": "C0ALERTS01"}})
    assert done.code == 0, done.stderr
    assert "ok: online: slack channel: C0ALERTS01 (#c0alerts01): the app is a member" in \
        done.stdout.splitlines()
