"""`bridge check-config --online`: ask each platform whether the configured credentials work,
and say what it answered, one line per check.

Slack: `auth.test` (whose token, which workspace) and `conversations.info` on the support
channel (the app is a member); Telegram: `getMe`; Twilio: the account; Messenger: each Page with
its token; email: an IMAP login and an SMTP login.  Nothing is sent or changed anywhere.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.logs import Redactor
from bridge.settings import LoadedConfig

TIMEOUT = 15.0
Check = Callable[[BaseModel, aiohttp.ClientSession], Awaitable[list["Answer"]]]


@dataclass(frozen=True, slots=True)
class Answer:
    what: str  # "slack", "telegram", "messenger page 123", ...
    ok: bool
    said: str

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'error'}: online: {self.what}: {self.said}"


async def _slack(loaded: LoadedConfig, session: aiohttp.ClientSession) -> list[Answer]:
    s = loaded.settings.slack
    client = AsyncWebClient(token=s.bot_token, base_url=s.api_base_url, session=session,
                            timeout=int(TIMEOUT))
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        return [Answer("slack", False, f"auth.test refused the bot token "
                                       f"({exc.response.get('error')})")]
    found = [Answer("slack", True, f"bot {auth.get('user')} ({auth.get('user_id')}) in "
                                   f"{auth.get('team')} ({auth.get('team_id')})")]
    # The support channel, then each other team's (`[teams.<name>]`), then alerts channels.
    channels = dict.fromkeys([s.support_channel, *(
        team.channel for team in loaded.settings.resolved_teams().values()), *(
        team.alerts_channel for team in loaded.settings.teams.values() if team.alerts_channel)])
    for name in channels:
        found.append(await _channel(client, name))
        if found[-1].said.endswith(_SCOPE_HINT):
            break  # the same answer for every channel
    return found


_SCOPE_HINT = " (add channels:read to the app, see config/slack-app-manifest.yml)"


async def _channel(client: AsyncWebClient, name: str) -> Answer:
    try:
        info = await client.conversations_info(channel=name)
    except SlackApiError as exc:
        error = exc.response.get("error")
        hint = _SCOPE_HINT if error == "missing_scope" else ""
        return Answer("slack channel", False, f"{name}: {error}{hint}")
    channel: dict[str, Any] = info.get("channel") or {}
    if not channel.get("is_member"):
        return Answer("slack channel", False, f"{name} (#{channel.get('name')}): the app is "
                      "not a member; /invite @Support Bridge in the channel")
    if channel.get("is_archived"):
        return Answer("slack channel", False, f"{name} (#{channel.get('name')}) is archived")
    return Answer("slack channel", True, f"{name} (#{channel.get('name')}): the app is a member")


async def _telegram(table: BaseModel, session: aiohttp.ClientSession) -> list[Answer]:
    base = str(getattr(table, "api_base_url", "")).rstrip("/")
    token = str(getattr(table, "bot_token", ""))
    async with session.get(f"{base}{token}/getMe") as resp:
        body = await resp.json(content_type=None)
    if resp.status == 200 and body.get("ok"):
        me = body["result"]
        return [Answer("telegram", True, f"bot @{me.get('username')} ({me.get('id')})")]
    return [Answer("telegram", False, f"getMe answered {resp.status}: "
                                      f"{body.get('description', 'no description')}")]


async def _twilio(table: BaseModel, session: aiohttp.ClientSession) -> list[Answer]:
    sid, token = str(getattr(table, "account_sid", "")), str(getattr(table, "auth_token", ""))
    base = str(getattr(table, "api_base_url", "")).rstrip("/")
    async with session.get(f"{base}/2010-04-01/Accounts/{sid}.json",
                           auth=aiohttp.BasicAuth(sid, token)) as resp:
        body = await resp.json(content_type=None)
    if resp.status == 200:
        return [Answer("twilio", True, f"account {body.get('friendly_name')!r} "
                                       f"({body.get('status')})")]
    return [Answer("twilio", False, f"the account answered {resp.status}: "
                                    f"{body.get('message', 'no message')} (code "
                                    f"{body.get('code')})")]


async def _messenger(table: BaseModel, session: aiohttp.ClientSession) -> list[Answer]:
    base = str(getattr(table, "graph_base_url", "")).rstrip("/")
    version = str(getattr(table, "graph_api_version", ""))
    found = []
    for page in getattr(table, "pages", []):
        async with session.get(f"{base}/{version}/{page.id}",
                               params={"fields": "id,name",
                                       "access_token": page.access_token}) as resp:
            body = await resp.json(content_type=None)
        what = f"messenger page {page.id}"
        if resp.status == 200:
            found.append(Answer(what, True, f"{body.get('name')!r}"))
        else:
            error = body.get("error") or {}
            found.append(Answer(what, False, f"{resp.status}: {error.get('message')} (code "
                                             f"{error.get('code')})"))
    return found


async def _whatsapp(table: BaseModel, session: aiohttp.ClientSession) -> list[Answer]:
    """Each business number, asked with the access token (a System User's, Bearer)."""
    base = str(getattr(table, "graph_base_url", "")).rstrip("/")
    version = str(getattr(table, "graph_api_version", ""))
    token = str(getattr(table, "access_token", ""))
    found = []
    for number in getattr(table, "phone_numbers", []):
        async with session.get(f"{base}/{version}/{number.phone_number_id}",
                               params={"fields": "display_phone_number,verified_name"},
                               headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json(content_type=None)
        what = f"whatsapp number {number.phone_number_id}"
        if resp.status == 200 and isinstance(body, dict):
            found.append(Answer(what, True, f"{body.get('verified_name')!r} "
                                            f"({body.get('display_phone_number')})"))
        else:
            error = (body.get("error") if isinstance(body, dict) else None) or {}
            found.append(Answer(what, False, f"{resp.status}: {error.get('message')} (code "
                                             f"{error.get('code')})"))
    return found


def _unreachable(what: str, host: str, port: int, exc: BaseException) -> Answer:
    """A server that could not be reached or spoke no protocol: where, and the error's kind."""
    return Answer(what, False, f"{host}:{port}: {type(exc).__name__}")


async def _email(table: BaseModel) -> list[Answer]:
    import aioimaplib  # only when email is enabled
    import aiosmtplib

    s: Any = table
    context = ssl.create_default_context(cafile=s.ca_file or None)
    found = []
    try:
        if s.imap_security == "ssl":
            imap = aioimaplib.IMAP4_SSL(s.imap_host, s.imap_port, ssl_context=context,
                                        timeout=TIMEOUT)
        else:
            imap = aioimaplib.IMAP4(s.imap_host, s.imap_port, timeout=TIMEOUT)
        await imap.wait_hello_from_server()
        if s.imap_security == "starttls":
            await imap.starttls(context)
        login = await imap.login(s.imap_user, s.imap_password)
        ok = login.result == "OK"
        found.append(Answer("email imap", ok, f"login as {s.imap_user} "
                                              f"{'accepted' if ok else 'refused'}"))
        await imap.logout()
    except (OSError, TimeoutError, aioimaplib.Abort) as exc:
        found.append(_unreachable("email imap", s.imap_host, s.imap_port, exc))
    try:
        smtp = aiosmtplib.SMTP(hostname=s.smtp_host, port=s.smtp_port, timeout=TIMEOUT,
                               use_tls=s.smtp_security == "ssl",
                               start_tls=s.smtp_security == "starttls", tls_context=context)
        await smtp.connect()
        if s.smtp_user:
            await smtp.login(s.smtp_user, s.smtp_password)
        found.append(Answer("email smtp", True, f"{s.smtp_host}:{s.smtp_port} accepted "
                                                f"{'the login' if s.smtp_user else 'us'}"))
        await smtp.quit()
    except (OSError, TimeoutError, aiosmtplib.SMTPException) as exc:
        found.append(_unreachable("email smtp", s.smtp_host, s.smtp_port, exc))
    return found


async def check_online(loaded: LoadedConfig, redact: Redactor) -> list[str]:
    """One line per check, redacted; `error:` lines for what failed."""
    answers: list[Answer] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        checks: list[tuple[str, Callable[[], Awaitable[list[Answer]]]]] = [
            ("slack", partial(_slack, loaded, session))]
        per_connector: dict[str, Check] = {
            "telegram": _telegram, "twilio": _twilio, "messenger": _messenger,
            "whatsapp": _whatsapp}
        for name, table in loaded.connectors.items():
            if name in per_connector:
                checks.append((name, partial(per_connector[name], table, session)))
            elif name == "email":
                checks.append((name, partial(_email, table)))
        for name, check in checks:
            try:
                answers.extend(await asyncio.wait_for(check(), TIMEOUT * 2))
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
                answers.append(Answer(name, False, f"no answer ({type(exc).__name__})"))
    return [redact(str(a)) for a in answers]
