"""Run one stand-in in the foreground:
``python -m bridge.standins slack|telegram|twilio|messenger|whatsapp --port N``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from bridge.standins.base import StandinBase
from bridge.standins.messenger import MessengerStandin
from bridge.standins.slack import SlackStandin
from bridge.standins.telegram import TelegramStandin
from bridge.standins.twilio import TwilioStandin
from bridge.standins.whatsapp import WhatsAppStandin


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bridge.standins", description=__doc__)
    parser.add_argument("kind", choices=["slack", "telegram", "twilio", "messenger",
                                                "whatsapp"])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--token",
        default=None,
        help="slack: bot token required as Bearer ('' disables the check); telegram: bot token",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    standin: StandinBase
    if args.kind == "slack":
        # On its own nobody adds users: every well-formed user id is a member.
        standin = (SlackStandin(any_user=True) if args.token is None
                   else SlackStandin(bot_token=args.token, any_user=True))
    elif args.kind == "messenger":  # any Page token is accepted; --token is not used
        standin = MessengerStandin()
    elif args.kind == "whatsapp":  # the default token (DEFAULT_TOKEN), the window not checked
        standin = WhatsAppStandin(check_window=False)
    elif args.kind == "twilio":  # the default test account (DEFAULT_ACCOUNT_SID / _AUTH_TOKEN)
        standin = TwilioStandin()
    else:
        standin = TelegramStandin() if args.token is None else TelegramStandin(token=args.token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await standin.start(args.host, args.port)
    try:
        kinds = (SlackStandin | TelegramStandin | TwilioStandin | MessengerStandin
                 | WhatsAppStandin)
        base = standin.base_url if isinstance(standin, kinds) else ""
        sys.stdout.write(f"READY {base}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await standin.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
