"""Request signing helpers that play the platforms' side of webhook authentication."""

from __future__ import annotations

import hashlib
import hmac
import time


def slack_signature_headers(
    signing_secret: str,
    body: bytes,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers Slack would send with ``body``: v0 HMAC-SHA256 signature over ``v0:{ts}:{body}``."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        signing_secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256
    ).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def telegram_secret_headers(secret: str) -> dict[str, str]:
    """Headers Telegram sends to a webhook registered with ``secret_token``."""
    return {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
