"""The `bridge` command: run, check-config, migrate, outbox, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from bridge.app import Bridge, create_store, run_until_signalled
from bridge.settings import ConfigError, LoadedConfig, load_settings, resolve_config_path
from connectors import settings_registry
from storage.base import StoreError

log = logging.getLogger("bridge")


def _load(path_arg: str | None) -> LoadedConfig:
    return load_settings(resolve_config_path(path_arg), settings_registry())


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "slack_bolt", "slack_sdk", "telegram", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_async(coro: Coroutine[Any, Any, int]) -> int:
    loop = _new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def cmd_check_config(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    try:
        loaded = load_settings(path, settings_registry())
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        errors = sum(1 for p in exc.problems if p.severity == "error")
        print(f"{path}: {errors} error(s), {len(exc.problems) - errors} warning(s)",
              file=sys.stderr)
        return 1
    for problem in loaded.warnings:
        print(problem, file=sys.stderr)
    enabled = ", ".join(sorted(loaded.connectors)) or "none"
    print(f"{path}: OK ({len(loaded.warnings)} warning(s)); connectors enabled: {enabled}")
    return 0


async def _migrate(loaded: LoadedConfig) -> int:
    store = create_store(loaded.settings.storage)
    await store.open()
    try:
        applied = await store.migrate()
        version = await store.schema_version()
    finally:
        await store.close()
    if applied:
        print(f"applied migrations {', '.join(map(str, applied))}; schema version {version}")
    else:
        print(f"schema is up to date (version {version})")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    return _run_async(_migrate(loaded))


async def _serve(loaded: LoadedConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bridge = Bridge(loaded)
    await run_until_signalled(bridge, stop)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    _setup_logging(loaded.settings.logging.level)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return _run_async(_serve(loaded))


async def _outbox_list(loaded: LoadedConfig) -> int:
    store = create_store(loaded.settings.storage)
    await store.open()
    try:
        await store.check_schema()
        items = await store.list_outbox(["pending", "failed"])
        connectors: dict[int, str] = {}
        for cid in {item.conversation_id for item in items}:
            conv = await store.get_conversation(cid)
            connectors[cid] = conv.connector if conv else "?"
    finally:
        await store.close()
    for item in items:
        error = (item.last_error or "").replace("\n", " ")
        target = "slack" if item.kind != "customer_send" else connectors[item.conversation_id]
        print(f"{item.id}\t{item.status}\tconversation={item.conversation_id}\t"
              f"connector={target}\t{item.kind}\tattempts={item.attempts}\t{error}")
    return 0


async def _outbox_retry(loaded: LoadedConfig, ids: Sequence[int], all_failed: bool) -> int:
    store = create_store(loaded.settings.storage)
    await store.open()
    try:
        await store.check_schema()
        queued = await store.retry_outbox(ids, all_failed, time.time())
    finally:
        await store.close()
    print(f"queued again: {', '.join(map(str, queued)) or 'nothing'}")
    return 0 if queued or all_failed else 1


def cmd_outbox(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if args.outbox_cmd == "list":
        return _run_async(_outbox_list(loaded))
    if not args.ids and not args.all_failed:
        print("give outbox ids or --all-failed", file=sys.stderr)
        return 2
    return _run_async(_outbox_retry(loaded, args.ids, args.all_failed))


def cmd_demo(args: argparse.Namespace) -> int:
    from bridge.demo import run_demo

    return _run_async(run_demo(verbose=args.verbose))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config_help = "config file (default: $BRIDGE_CONFIG, then ./bridge.toml)"

    p = sub.add_parser("run", help="serve webhooks and deliver messages until SIGTERM")
    p.add_argument("--config", help=config_help)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate a config file; exit 1 on errors")
    p.add_argument("--config", help=config_help)
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.add_argument("--config", help=config_help)
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("outbox", help="inspect or retry deliveries")
    p.add_argument("--config", help=config_help)
    osub = p.add_subparsers(dest="outbox_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=config_help, default=argparse.SUPPRESS)
    osub.add_parser("list", help="pending and failed deliveries, one per line",
                    parents=[common])
    r = osub.add_parser("retry", help="queue failed deliveries again", parents=[common])
    r.add_argument("ids", nargs="*", type=int)
    r.add_argument("--all-failed", action="store_true")
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser("demo", help="play a conversation against built-in stand-ins")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # python-telegram-bot: opt in to timedelta durations (silences its deprecation warning).
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

