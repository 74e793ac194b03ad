"""The IMAP side: fetch new mail by UID, never losing or repeating one; IDLE or poll.

aioimaplib (asyncio, no blocking `imaplib`).  The cursor (mailbox `UIDVALIDITY` and the last
UID handled) lives in the connector's state and moves past a mail only once the connector's
`handle` has returned, i.e. after the core committed it: a crash before that fetches it again,
and the store drops what it already holds (dedupe on the Message-ID).

- `BODY.PEEK[]`: fetching does not mark mail read; `processed` = "seen" or "move" does, after
  the commit.
- A new `UIDVALIDITY` (the mailbox was recreated) invalidates the UIDs: the mail received
  since a day before the cursor was last saved is fetched again (duplicates are dropped).
- First start without a cursor: only mail arriving from now on, unless `import_existing`.
- The server dropping the connection (restart, `doveadm kick`, network) ends the session at
  once (aioimaplib's connection-lost callback); the loop reconnects with backoff and jitter.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from itertools import pairwise
from typing import Any, TypeVar

import aioimaplib

from connectors.base import StateAPI
from connectors.email.settings import EmailSettings
from vocab.backoff import backoff

log = logging.getLogger(__name__)
IMAP_ERRORS = aioimaplib.AioImapException  # aioimaplib's own (Abort, CommandTimeout...)
CURSOR_KEY = "cursor"
BATCH = 200  # mails per SEARCH round: the rest come in the next one, without waiting
# A mail whose handling failed this many times in a row is handed over once more as
# unreadable (a placeholder with the original attached): one mail the store refuses must not
# block the mailbox, nor vanish.  If that fails too, the store is down: keep retrying.
POISON_AFTER = 3
T = TypeVar("T")
# handle(uid, raw, headers_only, as_unreadable) -> whether the mail was taken up (False: noise
# left alone, neither flagged nor moved by `processed`)
Handle = Callable[[int, bytes, bool, bool], Awaitable[bool]]


class ConnectionLost(Exception):
    pass


class ImapError(Exception):
    pass



def _ok(response: Any, what: str) -> list[bytes]:
    if response.result != "OK":
        raise ImapError(f"{what}: {response.result} {response.lines!r}"[:300])
    return [bytes(line) for line in response.lines]


class ImapPoller:
    base_delay = 1.0
    max_delay = 60.0

    def __init__(self, settings: EmailSettings, state: StateAPI, handle: Handle,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.state = state
        self.handle = handle
        self.rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False  # handling a mail (a commit may be under way): stop() waits
        self.sessions = 0  # connections made so far (a reconnect counts)
        self.rounds = 0  # fetch rounds completed (every new mail handed over), all sessions
        self._validity: int | None = None
        self._failures: dict[tuple[int | None, int], int] = {}  # (uidvalidity, uid) -> count

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="email-imap")

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (a drain budget)
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if not self._busy:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("email: the IMAP loop ended with an error")

    # -- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            before = self.rounds
            try:
                await self._session()
            except ConnectionLost:
                log.warning("email: the IMAP server closed the connection; reconnecting")
            except (ImapError, IMAP_ERRORS, OSError, TimeoutError, ssl.SSLError) as exc:
                log.warning("email: IMAP error: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("email: unexpected error in the IMAP loop")
            # A session that handed over all new mail at least once starts the backoff over: a
            # server that drops idle connections now and then is not a server that is down.
            # One that never got that far (the store refusing a commit, a server failing at
            # LOGIN or mid-FETCH) backs off further each time, up to `max_delay`.
            failures = 1 if self.rounds > before else failures + 1
            if not self._stopping:
                await asyncio.sleep(backoff(failures, base=self.base_delay, cap=self.max_delay,
                                            rand=self.rng.random))

    async def _session(self) -> None:
        s = self.settings
        lost = asyncio.Event()
        context = (ssl.create_default_context(cafile=s.ca_file or None)
                   if s.imap_security != "none" else None)
        imap = aioimaplib.IMAP4(host=s.imap_host, port=s.imap_port, timeout=s.imap_timeout,
                                conn_lost_cb=lambda exc: lost.set(),
                                ssl_context=context if s.imap_security == "ssl" else None)

        async def call(coro: Coroutine[Any, Any, T]) -> T:
            """Run one IMAP step; raise `ConnectionLost` the moment the connection goes."""
            step = asyncio.ensure_future(coro)
            gone = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({step, gone}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # cancelled (stop): the IMAP step goes too
                step.cancel()
                raise
            finally:
                gone.cancel()
            if step.done():
                return step.result()
            step.cancel()
            raise ConnectionLost()

        try:
            await call(imap.wait_hello_from_server())
            if s.imap_security == "starttls":
                assert context is not None
                await call(self._starttls(imap, context))
            _ok(await call(imap.login(s.imap_user, s.imap_password)), "LOGIN")
            lines = _ok(await call(imap.select(mailbox_arg(s.mailbox))), f"SELECT {s.mailbox}")
            self.sessions += 1
            last = await self._cursor(imap, call, lines)
            while not self._stopping:
                last = await self._fetch_new(imap, call, last)
                self.rounds += 1
                if self._stopping:
                    break
                if s.idle and imap.has_capability("IDLE"):
                    await self._idle(imap, call)
                else:
                    await call(asyncio.sleep(s.poll_interval))
        finally:
            for task in list(imap.tasks):
                task.cancel()
            if not lost.is_set():
                try:
                    await asyncio.wait_for(imap.logout(), 2)
                except Exception:
                    pass
            transport = getattr(imap.protocol, "transport", None)
            if transport is not None:
                transport.close()

    async def _starttls(self, imap: aioimaplib.IMAP4, context: ssl.SSLContext) -> None:
        """RFC 3501 STARTTLS, which aioimaplib lacks: the command, then the TLS handshake on
        the same connection, then the capabilities again (they may change after it)."""
        protocol = imap.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError("the server does not offer STARTTLS (use imap_security = \"ssl\")")
        command = aioimaplib.aioimaplib.Command("STARTTLS", protocol.new_tag(),
                                                loop=protocol.loop)
        _ok(await asyncio.wait_for(protocol.execute(command), self.settings.imap_timeout),
            "STARTTLS")
        loop = asyncio.get_running_loop()
        protocol.transport = await loop.start_tls(
            protocol.transport, protocol, context, server_hostname=self.settings.imap_host,
            ssl_handshake_timeout=self.settings.imap_timeout)
        await asyncio.wait_for(protocol.capability(), self.settings.imap_timeout)

    async def _idle(self, imap: aioimaplib.IMAP4, call: Any) -> None:
        idle = await call(imap.idle_start(timeout=self.settings.idle_renew))
        try:
            await call(imap.wait_server_push(timeout=self.settings.idle_renew + 30))
        except TimeoutError:
            pass
        finally:
            transport = getattr(imap.protocol, "transport", None)
            if imap.has_pending_idle() and transport is not None and not transport.is_closing():
                imap.idle_done()
        await call(asyncio.wait_for(idle, self.settings.imap_timeout))

    # -- the cursor --------------------------------------------------------------------------
    async def _cursor(self, imap: aioimaplib.IMAP4, call: Any, select: list[bytes]) -> int:
        validity = self._validity = _number(select, rb"UIDVALIDITY (\d+)")
        uidnext = _number(select, rb"UIDNEXT (\d+)")
        raw = await self.state.get(CURSOR_KEY)
        saved = json.loads(raw) if raw else None
        if saved is not None and saved.get("uidvalidity") == validity:
            return int(saved["last_uid"])
        if saved is None:
            last = 0 if self.settings.import_existing else max((uidnext or 1) - 1, 0)
        else:  # UIDVALIDITY changed: refetch what arrived since shortly before the cursor
            since = time.strftime("%d-%b-%Y", time.gmtime(float(saved["saved_at"]) - 86400))
            log.warning("email: UIDVALIDITY of %s changed; re-reading mail since %s (duplicates"
                        " are dropped)", self.settings.mailbox, since)
            found = _ok(await call(imap.uid_search("SINCE", since, charset=None)),
                        "UID SEARCH")
            uids = sorted(_uids(found))
            last = uids[0] - 1 if uids else max((uidnext or 1) - 1, 0)
        await self._save(validity, last)
        return last

    async def _save(self, validity: int | None, last: int) -> None:
        self._validity = validity
        await self.state.set(CURSOR_KEY, json.dumps(
            {"uidvalidity": validity, "last_uid": last, "saved_at": time.time()}))

    # -- fetching ----------------------------------------------------------------------------
    async def _fetch_new(self, imap: aioimaplib.IMAP4, call: Any, last: int) -> int:
        """Hand over every mail past `last`, in UID order; return the new `last`."""
        while not self._stopping:
            # SEARCH, not FETCH n:*, which some servers refuse on an empty mailbox; "n:*" also
            # matches the last mail when n is past it, hence the filter.
            found = _ok(await call(imap.uid_search("UID", f"{last + 1}:*", charset=None)),
                        "UID SEARCH")
            new = sorted(uid for uid in _uids(found) if uid > last)[:BATCH]
            if not new:
                break
            lines = _ok(await call(imap.uid("fetch", ",".join(map(str, new)),
                                            "(UID RFC822.SIZE)")), "UID FETCH")
            sizes: dict[int, int] = {}
            for line in lines:  # (an unsolicited FETCH, e.g. of FLAGS, has no size: max)
                uid = _number([line], rb"UID (\d+)")
                if uid in new:
                    size = _number([line], rb"RFC822\.SIZE (\d+)") or 0
                    sizes[uid] = max(sizes.get(uid, 0), size)
            for uid in new:
                if self._stopping:
                    break
                if uid in sizes:  # else expunged since the SEARCH
                    await self._take(imap, call, uid, sizes[uid])
                last = uid
            if len(new) < BATCH:
                break
        return last

    async def _take(self, imap: aioimaplib.IMAP4, call: Any, uid: int, size: int) -> None:
        """Fetch one mail, hand it over (returns after the commit), then move the cursor."""
        headers_only = size > self.settings.max_message_bytes
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        raw = _literal(_ok(await call(imap.uid("fetch", str(uid), f"(UID {part})")),
                           "UID FETCH"))
        key = (self._validity, uid)
        last_resort = False
        if raw is None:  # never skip a mail silently: reconnect and try again (expunged?)...
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            if failures < POISON_AFTER:
                raise ImapError(f"UID FETCH {uid}: no message in the answer")
            # ...but a server that never hands it over must not block the mailbox for good:
            # the agents get a placeholder that says where the mail is.
            log.error("email: UID FETCH %d answered %d times without the message; handing "
                      "over a placeholder", uid, failures)
            raw = (f"Subject: (a mail the IMAP server would not hand over: mailbox "
                   f"{self.settings.mailbox!r}, UID {uid}, UIDVALIDITY {self._validity})\r\n"
                   f"\r\n").encode()
            last_resort = True
        self._busy = True
        try:
            try:
                taken = await self.handle(uid, raw, headers_only, last_resort)
            except Exception:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                if failures < POISON_AFTER or last_resort:
                    raise
                log.exception("email: UID %d failed %d times; handing it over as unreadable",
                              uid, failures)
                taken = await self.handle(uid, raw, headers_only, True)
            self._failures.pop(key, None)
            await self._save(self._validity, uid)
        finally:
            self._busy = False
        if taken and not last_resort:  # (left where the placeholder says it is)
            await self._processed(imap, call, uid)

    async def _processed(self, imap: aioimaplib.IMAP4, call: Any, uid: int) -> None:
        s = self.settings
        try:
            if s.processed == "seen":
                _ok(await call(imap.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)")),
                    "UID STORE")
            elif s.processed == "move":
                mailbox = mailbox_arg(s.processed_mailbox)
                if imap.has_capability("MOVE"):
                    response = await call(imap.protocol.move(str(uid), mailbox, by_uid=True))
                    if response.result != "OK" and b"TRYCREATE" in b" ".join(response.lines):
                        await call(imap.create(mailbox))
                        response = await call(imap.protocol.move(str(uid), mailbox,
                                                                 by_uid=True))
                    _ok(response, "UID MOVE")
                else:
                    _ok(await call(imap.uid("copy", str(uid), mailbox)), "UID COPY")
                    _ok(await call(imap.uid("store", str(uid), "+FLAGS.SILENT",
                                            r"(\Deleted)")), "UID STORE")
        except (ImapError, IMAP_ERRORS) as exc:  # stored already: only the tidying failed
            log.warning("email: could not mark UID %d as processed: %s", uid, exc)


def _uids(lines: list[bytes]) -> list[int]:
    """The UIDs of a SEARCH answer (other untagged lines, such as `3 EXISTS`, are not)."""
    found: list[int] = []
    for line in lines[:-1]:  # the last is the tagged completion
        words = line.split()
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        if words and all(w.isdigit() for w in words):
            found.extend(int(w) for w in words)
    return found


def _number(lines: list[bytes], pattern: bytes) -> int | None:
    for line in lines:
        match = re.search(pattern, line)
        if match:
            return int(match.group(1))
    return None


def _literal(lines: list[bytes]) -> bytes | None:
    """The message bytes in a FETCH response: the element after a line ending in `{size}`."""
    for line, following in pairwise(lines):
        match = re.search(rb"\{(\d+)\}$", line)
        if match and len(following) == int(match.group(1)):
            return following
    return None


def mailbox_arg(name: str) -> str:
    """A mailbox name as an IMAP argument: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + data.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    encoded = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{encoded}"'
