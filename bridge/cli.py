"""The `bridge` command: run, check-config, migrate, outbox, copy-store, backup, queue, hours,
faq, customer, audit, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridge import cli_privacy, cli_report
from bridge.clock import Clock, FakeClockRefused, business_clock
from bridge.logs import Redactor, setup_logging
from bridge.registry import create_store, settings_registry
from bridge.settings import (
    ConfigError,
    LoadedConfig,
    StorageSettings,
    load_settings,
    resolve_config_path,
)
from bridge.startup import explain
from storage.backup import backup_sqlite
from storage.base import StoreError
from storage.copy import copy_store
from storage.sqlite import SQLiteStore, sqlite_path
from storage.sqlstore import SQLStore

log = logging.getLogger("bridge")


def _load(path_arg: str | None) -> LoadedConfig:
    loaded = load_settings(resolve_config_path(path_arg), settings_registry())
    clock_of(loaded)  # every command refuses a BRIDGE_FAKE_NOW its config does not allow
    return loaded


def clock_of(loaded: LoadedConfig) -> Clock:
    """The business clock every command uses: real time, or BRIDGE_FAKE_NOW where allowed."""
    return business_clock(os.environ, allowed=loaded.settings.server.allow_fake_clock,
                          config_path=str(loaded.path))


def _setup_logging(loaded: LoadedConfig) -> Redactor:
    settings = loaded.settings.logging
    return setup_logging(settings.level, style=settings.format, secrets=loaded.secrets)


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
    if not args.online:
        return 0
    from bridge.online import check_online

    lines = _run_async_lines(check_online(loaded, Redactor(loaded.secrets)))
    for line in lines:
        print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
    return 1 if any(line.startswith("error:") for line in lines) else 0


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


def _run_async_lines(coro: Coroutine[Any, Any, list[str]]) -> list[str]:
    loop = _new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    return _run_async(_migrate(loaded))


async def _serve(loaded: LoadedConfig, redact: Redactor, clock: Clock) -> int:
    from bridge.app import Bridge, StartupFailure, run_until_signalled  # `run` only

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bridge = Bridge(loaded, clock=clock)
    try:
        await run_until_signalled(bridge, stop)
    except StartupFailure as failed:
        log.debug("start-up failed", exc_info=failed.cause)
        explained = explain(failed.step, failed.cause, loaded.settings)
        print(redact(str(explained)), file=sys.stderr)
        return explained.code
    log.info("bridge stopped")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    clock = clock_of(loaded)  # refused before anything starts when not allowed
    redact = _setup_logging(loaded)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return _run_async(_serve(loaded, redact, clock))


@asynccontextmanager
async def _migrated_store(loaded: LoadedConfig) -> AsyncIterator[SQLStore]:
    """The store of a command that only reads or requeues: migrated already, and a SQLite
    file that is not there is an error (not an empty database left behind)."""
    url = loaded.settings.storage.url
    if url.startswith("sqlite:///") and not await asyncio.to_thread(
            Path(sqlite_path(url)).is_file):
        raise StoreError(f"no SQLite database at {sqlite_path(url)} "
                         "(fix: check [storage] url, or run `bridge migrate`)")
    store = create_store(loaded.settings.storage)
    await store.open()
    try:
        await store.check_schema()
        yield store
    finally:
        await store.close()


async def _outbox_list(loaded: LoadedConfig) -> int:
    async with _migrated_store(loaded) as store:
        items = await store.list_outbox(["pending", "failed"])
        connectors: dict[int, str] = {}
        for cid in {item.conversation_id for item in items}:
            conv = await store.get_conversation(cid)
            connectors[cid] = conv.connector if conv else "?"
    for item in items:
        error = (item.last_error or "").replace("\n", " ")
        target = connectors[item.conversation_id] if item.kind.customer_side else "slack"
        print(f"{item.id}\t{item.status}\tconversation={item.conversation_id}\t"
              f"connector={target}\t{item.kind}\tattempts={item.attempts}\t{error}")
    return 0


async def _outbox_retry(loaded: LoadedConfig, ids: Sequence[int], all_failed: bool) -> int:
    async with _migrated_store(loaded) as store:
        queued = await store.retry_outbox(ids, all_failed, clock_of(loaded)())
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


# -- copy-store: move a deployment between databases (SQLite -> PostgreSQL, or back) --------
def _store_from(flag: str, url: str, schema: str | None) -> SQLStore:
    table = {"url": url} if schema is None else {"url": url, "schema": schema}
    try:
        settings = StorageSettings.model_validate(table)
    except ValidationError as exc:
        raise StoreError("; ".join(f"{flag}: {e['msg'].removeprefix('Value error, ')}"
                                   for e in exc.errors())) from None
    store = create_store(settings)
    if isinstance(store, SQLiteStore) and flag == "--from" and not Path(store.path).is_file():
        raise StoreError(f"--from: {store.path} does not exist")
    return store


async def _copy_store(source: SQLStore, target: SQLStore) -> int:
    await source.open()
    try:
        await target.open()
        try:
            copied = await copy_store(source, target)
        finally:
            await target.close()
    finally:
        await source.close()
    width = max(len(t.table) for t in copied)
    for t in copied:
        print(f"{t.table:<{width}}  {t.copied:>8} copied  {t.skipped:>8} already there")
    print(f"copied {source.where} into {target.where}")
    return 0


def cmd_copy_store(args: argparse.Namespace) -> int:
    source = _store_from("--from", args.from_url, args.from_schema)
    target = _store_from("--to", args.to_url, args.to_schema)
    if source.where == target.where:
        raise StoreError("--from and --to name the same database")
    return _run_async(_copy_store(source, target))


async def _queue(loaded: LoadedConfig, team: str | None, fmt: str) -> int:
    from bridge.queue import as_json, as_table, team_sections

    teams = loaded.settings.resolved_teams()
    if team is not None and team not in teams:
        print(f"error: there is no team {team!r} (teams: {', '.join(sorted(teams))})",
              file=sys.stderr)
        return 2
    async with _migrated_store(loaded) as store:
        entries = await store.queue()
    sections = team_sections(entries, teams, team)
    now = clock_of(loaded)()
    print(as_json(sections, now) if fmt == "json" else as_table(sections, now))
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    """Every team's open conversations, the longest-waiting customer first (from the store;
    no running bridge needed)."""
    return _run_async(_queue(_load(args.config), args.team, args.format))


def cmd_hours(args: argparse.Namespace) -> int:
    """Whether a team is open now, and its next opening and closing (no store needed)."""
    import json

    from bridge.hours import opening_json, opening_text
    from bridge.teams import DEFAULT_TEAM

    loaded = _load(args.config)
    teams = loaded.settings.resolved_teams()
    team = args.team or DEFAULT_TEAM
    if team not in teams:
        print(f"error: there is no team {team!r} (teams: {', '.join(sorted(teams))})",
              file=sys.stderr)
        return 2
    calendar = loaded.settings.calendar(team)
    now = clock_of(loaded)()
    print(json.dumps(opening_json(team, calendar, now)) if args.format == "json"
          else opening_text(team, calendar, now))
    return 0


def cmd_faq(args: argparse.Namespace) -> int:
    """`bridge faq test "question"`: the FAQ entries that match best, with their scores."""
    from bridge.faq import FaqError, faq_path, faq_report, load_faq

    loaded = _load(args.config)
    faq_settings = loaded.settings.faq
    if not faq_settings.file:
        print(f"error: {loaded.path} has no [faq] file (fix: add [faq] file = \"faq.toml\")",
              file=sys.stderr)
        return 2
    try:
        faq = load_faq(faq_path(loaded.path, faq_settings.file))
    except FaqError as exc:
        print(f"error: {exc} (fix: {exc.fix})", file=sys.stderr)
        return 1
    print(faq_report(faq, args.question, faq_settings.threshold, args.format))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the SQLite store, safe while the bridge runs."""
    loaded = _load(args.config)
    url = loaded.settings.storage.url
    if not url.startswith("sqlite:///"):
        raise StoreError("`bridge backup` copies a SQLite store; for PostgreSQL use pg_dump "
                         "(fix: pg_dump --format=custom --file=PATH, see the README's Backups)")
    done = backup_sqlite(Path(sqlite_path(url)), Path(args.path))
    print(f"backed up {done.size} bytes to {done.path} (schema version {done.schema_version})")
    return 0


async def _privacy(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    async with _migrated_store(loaded) as store:
        return await cli_privacy.run(store, args, clock_of(loaded)())


def cmd_privacy(args: argparse.Namespace) -> int:
    """`bridge customer ...` and `bridge audit`: customers' data, on the store directly."""
    return _run_async(_privacy(_load(args.config), args))


def package_version() -> str:
    try:
        return metadata.version("support-bridge")
    except metadata.PackageNotFoundError:  # a checkout on the path, not installed
        return "unknown"


async def _report(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    async with _migrated_store(loaded) as store:
        return await cli_report.run_report(store, loaded.settings, args, clock_of(loaded)())


def cmd_report(args: argparse.Namespace) -> int:
    """The KPIs for a period (bridge/report.py), read from the store."""
    return _run_async(_report(_load(args.config), args))


def cmd_dashboard_link(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    return cli_report.dashboard_link(loaded.settings, args, clock_of(loaded)())


def cmd_demo(args: argparse.Namespace) -> int:
    if args.serve:
        from bridge.demo_webchat import serve_until_signalled
        return _run_async(serve_until_signalled(args.site_port))
    from bridge.demo import run_demo

    return _run_async(run_demo(verbose=args.verbose))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"bridge (support-bridge) {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    config_help = "config file (default: $BRIDGE_CONFIG, then ./bridge.toml)"

    p = sub.add_parser("run", help="serve webhooks and deliver messages until SIGTERM")
    p.add_argument("--config", help=config_help)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate a config file; exit 1 on errors")
    p.add_argument("--config", help=config_help)
    p.add_argument("--online", action="store_true",
                   help="also ask each platform whether the credentials work (sends nothing)")
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
    r.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox ids (bridge outbox list)")
    r.add_argument("--all-failed", action="store_true", help="every failed delivery")
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser(
        "copy-store", help="copy a store into another database (e.g. SQLite into PostgreSQL)",
        description="Copy every table of one store into another, ids preserved; the target is "
        "migrated first and rows already there are skipped, so a rerun is safe.  Stop the "
        "bridge that writes the source first.")
    p.add_argument("--from", dest="from_url", required=True, metavar="URL",
                   help="source: sqlite:///bridge.db or postgresql://user@host:5432/db")
    p.add_argument("--to", dest="to_url", required=True, metavar="URL", help="target URL")
    p.add_argument("--from-schema", help="PostgreSQL schema of the source (storage.schema)")
    p.add_argument("--to-schema", help="PostgreSQL schema of the target (created if missing)")
    p.set_defaults(func=cmd_copy_store)
    p = sub.add_parser(
        "backup", help="copy the SQLite store to PATH, safe while the bridge runs",
        description="An online backup of the SQLite store (SQLite's backup API: one "
        "consistent snapshot while `bridge run` keeps writing).  PATH must not exist yet.  "
        "For PostgreSQL, use pg_dump.")
    p.add_argument("path", metavar="PATH", help="the backup file to create")
    p.add_argument("--config", help=config_help)
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("queue", help="open conversations per team, longest waiting first")
    p.add_argument("--config", help=config_help)
    p.add_argument("--team", metavar="NAME", help="only this team's")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="a table per team (default) or one JSON list")
    p.set_defaults(func=cmd_queue)
    p = sub.add_parser("hours", help="whether a team is open now, next opening and closing")
    p.add_argument("team", nargs="?", metavar="TEAM", help="the team (default: support)")
    p.add_argument("--config", help=config_help)
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="one line (default) or a JSON object")
    p.set_defaults(func=cmd_hours)
    p = sub.add_parser("faq", help="try the FAQ: which answers a question gets, with scores")
    fsub = p.add_subparsers(dest="faq_command", required=True, metavar="COMMAND")
    t = fsub.add_parser("test", help="the best matches for a question, with their scores")
    t.add_argument("question", help="a customer's question, in quotes")
    t.add_argument("--config", help=config_help)
    t.add_argument("--format", choices=("table", "json"), default="table",
                   help="lines to read (default) or one JSON object")
    p.set_defaults(func=cmd_faq)
    for p in cli_privacy.add_commands(sub, config_help):
        p.set_defaults(func=cmd_privacy)
    report, link = cli_report.add_commands(sub, config_help)
    report.set_defaults(func=cmd_report)
    link.set_defaults(func=cmd_dashboard_link)
    p = sub.add_parser("demo", help="play a conversation against built-in stand-ins")
    p.add_argument("--verbose", action="store_true", help="also log what the bridge does")
    p.add_argument("--serve", action="store_true",
                   help="instead: serve a shop page with the web chat widget until Ctrl+C")
    p.add_argument("--site-port", type=int, default=8765, help="the shop page's port (--serve)")
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
    except (StoreError, FakeClockRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

