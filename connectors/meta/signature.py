"""Meta's webhook authenticity: `X-Hub-Signature-256` over the raw body, and the `GET`
subscription handshake.  One place for every Meta connector."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from connectors.base import Unauthorized

SIGNATURE = "X-Hub-Signature-256"


def precheck(request: web.Request) -> None:
    """Before the body is read: a request without a signature is not read at all."""
    if not request.headers.get(SIGNATURE, "").strip().lower().startswith("sha256="):
        raise Unauthorized(f"missing {SIGNATURE}")


def check(header: str, body: bytes, app_secret: str) -> None:
    """`sha256=<hex>` of the raw bytes with the app secret; the hex digits in either case
    (the same digest), nothing else.  `Unauthorized` otherwise."""
    algorithm, _, digest = header.strip().partition("=")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if (algorithm.lower() != "sha256" or not digest.isascii()
            or not hmac.compare_digest(digest.lower().encode(), expected.encode())):
        raise Unauthorized(f"missing or wrong {SIGNATURE}")


def verify(request: web.Request, body: bytes, app_secret: str) -> None:
    check(request.headers.get(SIGNATURE, ""), body, app_secret)


def handshake(request: web.Request, verify_token: str) -> web.Response:
    """Meta's subscription check: echo `hub.challenge` only for our verify token."""
    query = request.query
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), verify_token.encode()):
        return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
    return web.Response(status=403, text="forbidden", content_type="text/plain")
