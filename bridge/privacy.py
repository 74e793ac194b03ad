"""Customers' data (issue 28), above the store: the export document (JSON, or a zip with the
files the bridge holds) and the retention job.

The retention job runs at start-up and then every 24 hours of the bridge's clock (a moved
`BRIDGE_FAKE_NOW` included): every instance asks every `check_every` seconds, and the store
runs it for one of them per 24 hours (`storage/privacy.py`).
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.loops import Rounds
from bridge.settings import PrivacySettings
from storage.base import Retention, Store

log = logging.getLogger(__name__)

SCHEMA = "support-bridge/customer-export/1"
DAY = 86_400.0
_TIMES = ("_at", "platform_time")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def _with_iso_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (iso(v) if k.endswith(_TIMES) and isinstance(v, int | float)
                    else _with_iso_times(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_iso_times(v) for v in value]
    return value


def export_document(data: dict[str, Any], now: float) -> dict[str, Any]:
    """The export as written: a schema name, when, then the store's data with times in
    ISO 8601 (UTC)."""
    return {"schema": SCHEMA, "exported_at": iso(now), **_with_iso_times(data)}


def file_entry(row: dict[str, Any], index: int) -> str:
    name = str(row.get("filename") or "file").replace("/", "_").replace("\\", "_")
    return f"files/{index:04d}-{name}"


async def export_bytes(store: Store, customer_id: int, actor: str, now: float,
                       with_files: bool) -> bytes | None:
    """The export of one customer as bytes (JSON, or a zip with `with_files`); None for an
    unknown customer.  Audited."""
    data = await store.export_customer(customer_id, actor, now)
    if data is None:
        return None
    document = export_document(data, now)
    if not with_files:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    files = data["files"]
    held = dict(await store.media_data([str(f["token"]) for f in files]))
    for index, row in enumerate(document["files"]):
        row["path"] = file_entry(row, index) if row["token"] in held else None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customer.json", json.dumps(document, indent=2, ensure_ascii=False))
        for row in document["files"]:
            if row["path"] is not None:
                archive.writestr(row["path"], held[row["token"]])
    return buffer.getvalue()


class RetentionJob:
    def __init__(self, store: Store, settings: PrivacySettings,
                 clock: Callable[[], float], check_every: float = 60.0) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.check_every = check_every  # seconds of real time between asks
        self.last: Retention | None = None
        self._rounds = Rounds("retention", lambda: self.run_once(), lambda: self.check_every,
                              log, "the retention job failed")

    @property
    def enabled(self) -> bool:
        return self.settings.keep_messages_days > 0 or self.settings.keep_media_days > 0

    async def run_once(self, interval: float = DAY) -> Retention:
        now = self.clock()
        days_m, days_f = self.settings.keep_messages_days, self.settings.keep_media_days
        result = await self.store.retention(
            now, now - days_m * DAY if days_m > 0 else None,
            now - days_f * DAY if days_f > 0 else None, "retention", interval)
        if result.ran:
            log.info("retention: %d messages emptied, %d files deleted", result.messages,
                     result.media)
        self.last = result
        return result

    async def start(self) -> None:
        if self.enabled:
            self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
