"""Telegram long polling that never confirms an update before it is stored.

python-telegram-bot's `Updater` advances its offset as soon as it has queued the updates, so the
next `getUpdates` confirms them to Telegram before the bridge has committed them: a crash in
between loses them.  This loop passes `offset = max(update_id) + 1` only after `ingest` has
returned (after the commit); a crash before that makes Telegram send the batch again, and the
store drops what it already holds (dedupe on `update_id`).

`getUpdates` is called through the bot's own get-updates request object rather than
`Bot.get_updates`, to get the raw JSON: each update goes to the pure parser as Telegram sent it,
and one that does not parse is skipped by its `update_id` (PTB's `Update.de_list` would fail
the whole batch, and the loop would fetch it again forever).
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import logging
import random
import time
from collections.abc import Callable
from urllib.parse import urlencode

from telegram import Bot
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import BaseRequest

from connectors.base import Ingest, Malformed, StateAPI
from connectors.telegram.parse import HANDLED_UPDATES
from vocab.backoff import backoff
from vocab.models import InboundMessage

log = logging.getLogger(__name__)

Parse = Callable[[object], list[InboundMessage]]
OFFSET_KEY = "offset"
# Telegram keeps an update for at most 24 h, and `update_id`s restart at random after a week
# without updates: an older stored offset could only confirm (drop) updates never stored.
OFFSET_MAX_AGE = 24 * 3600.0
BATCH_LIMIT = 100  # getUpdates' maximum



def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


class TelegramPoller:
    """deleteWebhook once, then getUpdates -> parse -> ingest (commit) -> advance the offset.

    Failures, each logged and retried until `stop()`:
    - the store fails during ingest: the same batch is retried with backoff, the offset stays;
    - `Conflict` (another process polls with this token, or a webhook is set): backoff with
      jitter; deleteWebhook again when the conflict is a webhook;
    - `RetryAfter`: wait as told;
    - network errors and timeouts, or any other Bot API error: exponential backoff.
    """

    network_base = 0.5  # seconds: first wait after a network error (doubles, up to max_delay)
    conflict_base = 2.0  # seconds: first wait after a Conflict
    store_base = 0.5  # seconds: first wait after a failed commit
    max_delay = 30.0

    def __init__(self, bot: Bot, request: BaseRequest, *, parse: Parse, ingest: Ingest,
                 state: StateAPI, poll_timeout: int, request_timeout: float,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.bot = bot
        self.request = request  # the bot's get-updates request: its own connection
        self.parse = parse
        self.ingest = ingest
        self.state = state
        self.poll_timeout = poll_timeout
        # Telegram holds the request up to `poll_timeout`; allow that plus a normal read.
        self.read_timeout = poll_timeout + request_timeout
        self.clock = clock
        self.rng = rng or random.Random()
        self.offset: int | None = None  # the next getUpdates offset: everything below is stored
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._interruptible = False  # waiting on Telegram or sleeping: stop() may cancel

    def _delay(self, base: float, attempt: int) -> float:
        return backoff(attempt, base=base, cap=self.max_delay, rand=self.rng.random)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.offset = await self._load_offset()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="telegram-poll")

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (a drain budget)
        """Cancel a long poll or a backoff at once; let a commit in progress finish (bounded)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if self._interruptible:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("telegram polling: a commit was still running after %.0fs; cancelled",
                        timeout)
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # _run catches everything; this would be a bug
            log.exception("telegram polling ended with an error")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = conflicts = 0  # consecutive, for the backoff
        webhook_cleared = False
        while not self._stopping:
            delay: float
            self._interruptible = True
            try:
                if not webhook_cleared:
                    await self.bot.delete_webhook(drop_pending_updates=False)
                    webhook_cleared = True
                updates = await self._get_updates()
            except Conflict as exc:
                conflicts += 1
                delay = self._delay(self.conflict_base, conflicts)
                if "webhook" in exc.message.lower():
                    webhook_cleared = False
                    log.warning("telegram polling: a webhook is set for this bot (a bridge in "
                                "webhook mode, or a manual setWebhook?); deleting it again in "
                                "%.1fs", delay)
                else:
                    log.warning("telegram polling: another process is polling with this bot "
                                "token (run one bridge per bot); retrying in %.1fs (%s)",
                                delay, exc.message)
            except RetryAfter as exc:
                delay = _seconds(exc.retry_after)
                log.warning("telegram polling: flood control, waiting %.0fs as told", delay)
            except (InvalidToken, Forbidden, BadRequest) as exc:
                failures += 1
                delay = self._delay(self.network_base, failures)
                log.error("telegram polling: the Bot API refused the call: %s (%s); retrying "
                          "in %.1fs", exc.message, type(exc).__name__, delay)
            except NetworkError as exc:  # includes TimedOut
                failures += 1
                delay = self._delay(self.network_base, failures)
                log.warning("telegram polling: %s (%s); retrying in %.1fs", exc.message,
                            type(exc).__name__, delay)
            except TelegramError as exc:
                failures += 1
                delay = self._delay(self.network_base, failures)
                log.error("telegram polling: %s (%s); retrying in %.1fs", exc.message,
                          type(exc).__name__, delay)
            except Exception:  # not the Bot API's: keep polling rather than die silently
                failures += 1
                delay = self._delay(self.network_base, failures)
                log.exception("telegram polling: unexpected error; retrying in %.1fs", delay)
            else:
                conflicts = 0
                self._interruptible = False
                if await self._commit(updates) or not updates or self._stopping:
                    failures = 0
                    continue
                failures += 1  # updates but not one usable update_id: do not spin on them
                delay = self._delay(self.network_base, failures)
                log.error("telegram polling: getUpdates returned %d update(s) without a valid "
                          "update_id; retrying in %.1fs", len(updates), delay)
            finally:
                self._interruptible = False
            await self._pause(delay)

    async def _get_updates(self) -> list[object]:
        params: dict[str, str | int] = {
            "timeout": self.poll_timeout,
            "limit": BATCH_LIMIT,
            "allowed_updates": json.dumps(HANDLED_UPDATES),
        }
        if self.offset is not None:
            params["offset"] = self.offset
        # Raises the same typed errors as the Bot's own methods (Conflict, RetryAfter...).
        result = await self.request.post(f"{self.bot.base_url}/getUpdates?{urlencode(params)}",
                                         read_timeout=self.read_timeout)
        if not isinstance(result, list):
            raise TelegramError(f"getUpdates returned a {type(result).__name__}, not a list")
        return list(result)

    async def _commit(self, updates: list[object]) -> bool:
        """Store the batch (retrying a failed commit), then advance the offset past it.

        Returns False, without advancing, if no update had a usable `update_id`, or on stop.
        """
        items: list[InboundMessage] = []
        top: int | None = None
        for update in updates:
            uid = update.get("update_id") if isinstance(update, dict) else None
            if isinstance(uid, int) and not isinstance(uid, bool):
                top = uid if top is None else max(top, uid)
            try:
                items.extend(self.parse(update))
            except Malformed as exc:  # skipped, but its update_id still moves the offset
                log.warning("telegram polling: skipping malformed update %s: %s", uid, exc.reason)
            except Exception:  # a parser bug: the same, or every later update would wait
                log.exception("telegram polling: skipping update %s, the parser failed", uid)
        attempt = 0
        while items:
            try:
                await self.ingest(items)  # returns after the commit
                break
            except Exception:
                attempt += 1
                delay = self._delay(self.store_base, attempt)
                log.warning("telegram polling: storing %d message(s) failed (attempt %d); not "
                            "confirming them, retrying in %.1fs", len(items), attempt, delay,
                            exc_info=True)
                if self._stopping:
                    return False
                await self._pause(delay)
        if top is None:
            return False
        self.offset = top + 1  # the next getUpdates confirms the batch to Telegram
        await self._save_offset(self.offset)
        return True

    async def _pause(self, seconds: float) -> None:
        """Sleep; stop() cancels it."""
        if self._stopping:
            return
        self._interruptible = True
        try:
            await asyncio.sleep(seconds)
        finally:
            self._interruptible = False

    # -- the stored offset: saves re-reading a committed batch after a restart ----------------
    async def _load_offset(self) -> int | None:
        try:
            raw = await self.state.get(OFFSET_KEY)
            if raw is None:
                return None
            saved = json.loads(raw)
            offset, saved_at = int(saved["offset"]), float(saved["saved_at"])
        except Exception:
            log.warning("telegram polling: cannot read the stored offset; starting from "
                        "Telegram's own", exc_info=True)
            return None
        if self.clock() - saved_at > OFFSET_MAX_AGE:
            log.info("telegram polling: the stored offset is over a day old; not using it")
            return None
        return offset

    async def _save_offset(self, offset: int) -> None:
        # Failing here loses nothing: the next getUpdates confirms the batch to Telegram anyway,
        # and a restart with an older offset only makes the store drop a few duplicates.
        try:
            await self.state.set(OFFSET_KEY, json.dumps({"offset": offset,
                                                         "saved_at": self.clock()}))
        except Exception:
            log.warning("telegram polling: could not store the offset %d", offset,
                        exc_info=True)
