"""A failed start, said in one line an admin can act on: `error: <what> (fix: <how>)`.

Errors are recognised by their type's name and module, so this needs none of the platforms'
SDKs imported; anything not recognised still gives one line (the traceback is logged at DEBUG).
The text goes through the redactor before it is printed: no secret is ever shown.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from bridge.settings import Settings

EXIT_STORE = 1  # `bridge run`'s exit codes: 1 = the config or the store (as documented
EXIT_STARTUP = 3  # before), 2 = usage, 3 = another start-up failure (platform, port, network)


@dataclass(frozen=True, slots=True)
class Explained:
    what: str
    fix: str
    code: int = EXIT_STARTUP

    def __str__(self) -> str:
        return f"error: {self.what} (fix: {self.fix})"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _named(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _from(exc: BaseException, package: str) -> bool:
    return any(cls.__module__.split(".")[0] == package for cls in type(exc).__mro__)


def _slack_error(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    response = getattr(exc, "response", None)
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error", "error"))
    return type(exc).__name__


def explain(step: str, cause: BaseException, settings: Settings) -> Explained:
    """What failed at start-up, and what to do about it."""
    server, slack = settings.server, settings.slack
    for exc in _chain(cause):
        if isinstance(exc, OSError) and step == "listen":
            if exc.errno == errno.EADDRINUSE:
                return Explained(f"port {server.port} on {server.host} is already in use",
                                 "stop the other process, or set [server] port to a free one")
            if exc.errno == errno.EACCES:
                return Explained(f"not allowed to listen on port {server.port}",
                                 "use a port above 1023 and put a proxy in front on 443")
            if exc.errno == errno.EADDRNOTAVAIL:
                return Explained(f"this machine has no address {server.host}",
                                 "set [server] host to one of its addresses, or 127.0.0.1")
        if step == "store" and (_from(exc, "asyncpg") or isinstance(exc, OSError)):
            where = "the database" if "@" in settings.storage.url else settings.storage.url
            return Explained(f"cannot open {where} ({type(exc).__name__})",
                             "start PostgreSQL or correct [storage] url; `bridge migrate` "
                             "shows the same error without starting anything else")
        if _named(exc, "SupportChannelError"):
            code = str(getattr(exc, "code", ""))
            fix = {"channel_not_found": "put the channel's id (channel details, at the bottom: "
                                        "C…) into [slack] support_channel",
                   "is_archived": "unarchive the channel, or name another in [slack] "
                                  "support_channel",
                   }.get(code, "invite the app into the channel: /invite @Support Bridge")
            return Explained(f"Slack cannot be used in {slack.support_channel} ({code})", fix)
        if _named(exc, "SocketModeError"):
            return Explained(f"Slack refused Socket Mode ({_slack_error(exc)})",
                             "create an app-level token with connections:write (Basic "
                             "Information > App-Level Tokens) for SLACK_APP_TOKEN, and enable "
                             "Socket Mode in the app settings")
        if _named(exc, "SlackApiError"):
            code = _slack_error(exc)
            if code in ("invalid_auth", "not_authed", "token_revoked", "account_inactive",
                        "token_expired"):
                return Explained(f"Slack refused the bot token ({code})",
                                 "copy the Bot User OAuth Token (xoxb-…) from OAuth & "
                                 "Permissions into SLACK_BOT_TOKEN, and reinstall the app if "
                                 "it was revoked")
            if code in ("channel_not_found", "not_in_channel"):
                return Explained(f"Slack cannot post in {slack.support_channel} ({code})",
                                 "invite the app to the channel (/invite @Support Bridge) and "
                                 "check [slack] support_channel")
            return Explained(f"Slack answered {code} at start-up",
                             "check the app's scopes against config/slack-app-manifest.yml")
        if _named(exc, "InvalidToken"):
            return Explained("Telegram refused the bot token",
                             "copy the token @BotFather gave you into TELEGRAM_BOT_TOKEN")
        if _from(exc, "telegram") and _named(exc, "NetworkError", "TimedOut"):
            return Explained("cannot reach Telegram's Bot API",
                             "check the network, or [connectors.telegram] api_base_url")
        if _from(exc, "telegram") and _named(exc, "TelegramError"):
            return Explained(f"Telegram refused a start-up call: {exc}",
                             "check [connectors.telegram] (public_url for the webhook, mode)")
        if _from(exc, "twilio") and _named(exc, "TwilioRestException"):
            return Explained(f"Twilio refused a start-up call ({getattr(exc, 'code', '?')})",
                             "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if _from(exc, "aiohttp") and _named(exc, "ClientConnectionError", "ClientConnectorError"):
            target = slack.api_base_url if step == "console" else f"a platform ({step})"
            return Explained(f"cannot connect to {target}",
                             "check the network, a proxy, or the api_base_url in the config")
        if _named(exc, "StoreError"):
            return Explained(str(exc), "start the database or correct [storage] url; `bridge "
                             "migrate` shows the same error without starting anything else",
                             EXIT_STORE)
    return Explained(f"start-up step {step!r} failed: {type(cause).__name__}: {cause}",
                     "set [logging] level = \"DEBUG\" to log the traceback, and report it "
                     "if it is not a setting of yours")
