"""Logging, configured once by the CLI: text or one JSON object per line, and never a secret.

Every line is redacted after it is formatted, traceback included: a configured secret (and its
URL-encoded form, as it appears in a request URL such as Telegram's `/bot<token>/getMe`) is
replaced by `[redacted]`, whichever library wrote it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, TextIO
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
NOISY = ("httpx", "slack_bolt", "slack_sdk", "telegram", "aiohttp.access")


class Redactor:
    """Replaces each secret (longest first, so one inside another goes whole) in a text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s))}
        self.forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    exception's text when there is one."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, *, style: Literal["text", "json"] = "text",
                  secrets: Iterable[str] = (), stream: TextIO | None = None) -> Redactor:
    """Configure the root logger (replacing its handlers) and quiet chatty libraries; returns
    the redactor, for messages the CLI prints itself."""
    redact = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter(redact) if style == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
    return redact
