"""`bridge customer find|export|erase` and `bridge audit` (issue 28).  They work on the store
directly, with or without a running bridge; what must reach Slack (an erased customer's
threads emptied) is queued in the outbox for a running bridge to deliver."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.privacy import export_bytes, iso
from bridge.queue import SLACK_LINK
from storage.base import PersonFound, Store, StoreError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def customer_id(text: str) -> int:
    """A customer id argument: a positive integer the databases can hold (a bigger one would
    overflow the SQL driver instead of finding nobody)."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a customer id (find one with "
                                         "`bridge customer find`)")
    return int(text)


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _write_new(path: Path, data: bytes) -> None:
    try:
        with path.open("xb") as handle:  # never overwrite: an export is personal data
            handle.write(data)
    except FileExistsError:
        raise StoreError(f"{path} exists already (fix: give another --out)") from None


def permalink(channel: str, ts: str) -> str:
    return f"{SLACK_LINK}/archives/{channel}/p{ts.replace('.', '')}"


def since_epoch(text: str, now: float) -> float:
    """`--since`: a duration back from now (`30d`, `12h`) or a date/time (ISO 8601, UTC when
    no offset is given)."""
    refused = StoreError(f"--since {text[:40]!r}: give a duration such as 30d or 12h, or a "
                         "date such as 2026-01-31")
    match = _DURATION.match(text.strip())
    if match:
        back = float(match.group(1)) * _UNITS[match.group(2)]
        if not math.isfinite(back):  # hundreds of digits: no duration, junk
            raise refused
        return now - back
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise refused from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def people_json(people: list[PersonFound]) -> str:
    return json.dumps([{
        "customer_id": p.customer_id, "name": p.display_name,
        "identities": [{"id": i.id, "channel": i.channel, "address": i.address,
                        "name": i.display_name, "username": i.username}
                       for i in p.identities],
        "conversations": [{"id": c.id, "channel": c.connector, "status": c.status,
                           "created_at": iso(c.created_at)} for c in p.conversations]}
        for p in people], indent=2, ensure_ascii=False)


def people_table(people: list[PersonFound]) -> str:
    if not people:
        return "no customer matches"
    lines = []
    for p in people:
        lines.append(f"customer {p.customer_id}  {p.display_name or '-'}")
        for i in p.identities:
            user = f" @{i.username}" if i.username else ""
            lines.append(f"  {i.channel or i.connector:<9} {i.address}{user}"
                         f"  {i.display_name}".rstrip())
        convs = ", ".join(f"#{c.id} {c.status}" for c in p.conversations)
        lines.append(f"  conversations: {convs or 'none'}")
    return "\n".join(lines)


async def find(store: Store, args: argparse.Namespace) -> int:
    people = await store.find_people(args.query)
    print(people_json(people) if args.format == "json" else people_table(people))
    return 0


async def export(store: Store, args: argparse.Namespace, now: float) -> int:
    # Refused before anything is read, so the audit log records only exports that happened.
    if args.out is None and args.with_files:
        print("error: --with-files writes a zip: give --out FILE.zip", file=sys.stderr)
        return 2
    if args.out is not None and await asyncio.to_thread(Path(args.out).exists):
        print(f"error: {args.out} exists already (fix: give another --out)", file=sys.stderr)
        return 1
    data = await export_bytes(store, args.customer_id, args.actor, now, args.with_files)
    if data is None:
        print(f"error: there is no customer {args.customer_id} (find one with "
              "`bridge customer find`)", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(data.decode())
        return 0
    out = Path(args.out)
    await asyncio.to_thread(_write_new, out, data)
    print(f"exported customer {args.customer_id} to {out} ({len(data)} bytes)")
    return 0


async def erase(store: Store, args: argparse.Namespace, now: float) -> int:
    if not args.yes:
        card = await store.customer_card(args.customer_id)
        if card is None:
            print(f"error: there is no customer {args.customer_id} to erase",
                  file=sys.stderr)
            return 1
        print(f"customer {args.customer_id} {card.display_name}: "
              f"{len(card.identities)} identities, {card.conversations} conversations")
        if not sys.stdin.isatty():
            print("error: not erased: confirm with --yes", file=sys.stderr)
            return 2
        answer = await asyncio.to_thread(input, "erase everything about this customer? "
                                         "type 'erase': ")
        if answer.strip() != "erase":
            print("not erased")
            return 1
    done = await store.erase_customer(args.customer_id, args.actor, now)
    if not done.found:
        print(f"error: there is no customer {args.customer_id}", file=sys.stderr)
        return 1
    if done.already:
        print(f"customer {args.customer_id} was erased before; nothing to do")
        return 0
    print(f"erased customer {args.customer_id}: {done.identities} identities, "
          f"{done.conversations} conversations, {done.messages} messages")
    print(f"Slack: {len(done.threads)} thread(s) queued to be emptied by the running bridge")
    if done.agent_replies:
        print("agents' replies the bridge cannot delete (a workspace admin removes them):")
        for channel, ts in done.agent_replies:
            print(f"  {permalink(channel, ts)}")
    return 0


async def audit(store: Store, args: argparse.Namespace, now: float) -> int:
    since = since_epoch(args.since, now) if args.since else 0.0
    entries = await store.audit_entries(since)
    if args.format == "json":
        print(json.dumps([{**e.model_dump(), "at": iso(e.at)} for e in entries], indent=2))
        return 0
    for e in entries:
        who = "" if e.customer_id is None else f" customer={e.customer_id}"
        other = "" if e.other_customer_id is None else f" other={e.other_customer_id}"
        print(f"{iso(e.at)}  {e.action:<9} {e.actor}{who}{other}  {e.detail}".rstrip())
    if not entries:
        print("no audit entries")
    return 0


def add_commands(sub: Any, config_help: str) -> tuple[argparse.ArgumentParser, ...]:
    """The parsers, for `bridge.cli` to wire (it sets `func`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=config_help, default=argparse.SUPPRESS)
    acting = argparse.ArgumentParser(add_help=False)
    acting.add_argument("--actor", default=default_actor(),
                        help="who acts, for the audit log (default: cli:<your user name>)")
    p = sub.add_parser("customer", help="find, export or erase a customer's data")
    p.add_argument("--config", help=config_help)
    csub = p.add_subparsers(dest="customer_cmd", required=True)
    f = csub.add_parser("find", parents=[common], help="customers matching a name, phone, "
                        "email, Telegram @user or conversation id")
    f.add_argument("query")
    f.add_argument("--format", choices=("table", "json"), default="table")
    e = csub.add_parser("export", parents=[common, acting], help="everything held about a customer,"
                        " as JSON (a zip with --with-files)")
    e.add_argument("customer_id", type=customer_id)
    e.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    e.add_argument("--with-files", action="store_true",
                   help="a zip: customer.json and the files the bridge holds")
    r = csub.add_parser("erase", parents=[common, acting], help="remove a customer's personal data "
                        "and empty their Slack threads")
    r.add_argument("customer_id", type=customer_id)
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a = sub.add_parser("audit", help="who did what to customers' data")
    a.add_argument("--config", help=config_help)
    a.add_argument("--since", metavar="WHEN", help="a duration back (30d, 12h) or a date")
    a.add_argument("--format", choices=("table", "json"), default="table")
    return p, a


async def run(store: Store, args: argparse.Namespace, now: float) -> int:
    if args.command == "audit":
        return await audit(store, args, now)
    if args.customer_cmd == "find":
        return await find(store, args)
    if args.customer_cmd == "export":
        return await export(store, args, now)
    return await erase(store, args, now)
