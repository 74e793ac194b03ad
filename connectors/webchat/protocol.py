"""The widget's wire protocol, pure: frames from the page, visitor tokens, identity hashes,
rate limits.  Nothing here does I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from vocab.untrusted import load_json

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
VISITOR = re.compile(r"v-[0-9a-f]{24}")
USER_ID = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


class BadFrame(Exception):
    """A frame the bridge will not act on; `code` goes back to the page."""

    def __init__(self, code: str, client_id: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class PageContext:
    url: str = ""
    referrer: str = ""
    language: str = ""
    local_time: str = ""
    invitation: str = ""  # the invitation the visitor answered, if one was shown
    email: str = ""  # left in the offline prompt (unverified)


@dataclass(frozen=True, slots=True)
class Say:
    client_id: str
    text: str
    page: PageContext


@dataclass(frozen=True, slots=True)
class Resume:
    after: int


@dataclass(frozen=True, slots=True)
class Ping:
    pass


Frame = Say | Resume | Ping


def _short(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_frame(raw: str, max_chars: int) -> Frame:
    """One text frame from the page, or `BadFrame`."""
    try:
        data = load_json(raw)  # depth-limited; NUL, control characters, lone surrogates gone
    except ValueError as exc:
        raise BadFrame("bad_json") from exc
    return frame_of(data, max_chars)


def frame_of(data: Any, max_chars: int) -> Frame:
    """One decoded (and cleaned: `vocab.untrusted.load_json`) frame, or `BadFrame`."""
    if not isinstance(data, dict):
        raise BadFrame("bad_frame")
    kind = data.get("type")
    if kind == "ping":
        return Ping()
    if kind == "resume":
        after = data.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise BadFrame("bad_resume")
        return Resume(after)
    if kind != "message":
        raise BadFrame("unknown_type")
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        raise BadFrame("bad_client_id")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadFrame("empty", client_id)
    text = text.strip().replace("\x00", "")
    if len(text) > max_chars:
        raise BadFrame("too_long", client_id)
    page = data.get("page")
    page = page if isinstance(page, dict) else {}
    return Say(client_id, text, PageContext(
        url=_short(page.get("url"), 500), referrer=_short(page.get("referrer"), 500),
        language=_short(page.get("language"), 35), local_time=_short(page.get("local_time"), 80),
        invitation=_short(page.get("invitation"), 200), email=_email(page.get("email"))))


def _email(value: Any) -> str:
    value = _short(value, 200).strip()
    return value if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", value) else ""


def context_line(page: PageContext, email: str = "") -> str:
    """What the first message of a conversation tells the agents about the visitor."""
    parts = [f"page {page.url}" if page.url else "", f"from {page.referrer}" if page.referrer
             else "", f"language {page.language}" if page.language else "",
             f"local time {page.local_time}" if page.local_time else "",
             f"email {email} (unverified)" if email else "",
             f"after the invitation \"{page.invitation}\"" if page.invitation else "",
             f"written while offline; answer by email to {page.email} (unverified)"
             if page.email else ""]
    return " · ".join(p for p in parts if p)


# -- visitors ---------------------------------------------------------------------------------
def new_visitor() -> str:
    return "v-" + secrets.token_hex(12)


def sign_visitor(secret: bytes, site: str, visitor: str) -> str:
    mac = hmac.new(secret, f"{site}\n{visitor}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{visitor}.{mac}"


def visitor_of(secret: bytes, site: str, token: str) -> str | None:
    """The anonymous visitor a token names, if we signed it for this site."""
    visitor, _, _mac = token.partition(".")
    if not VISITOR.fullmatch(visitor):
        return None
    return visitor if hmac.compare_digest(sign_visitor(secret, site, visitor), token) else None


def user_verified(identity_secret: str, user_id: str, user_hash: str) -> bool:
    """`user_hash` is lowercase hex HMAC-SHA256(identity_secret, user_id)."""
    if not identity_secret or not user_id or not user_hash:
        return False
    want = hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want.encode(), user_hash.strip().lower().encode())


# -- rate limits ------------------------------------------------------------------------------
class Limiter:
    """At most `per_minute` events per key in any 60 s (sliding window); bounded memory."""

    def __init__(self, per_minute: int, size: int = 20000) -> None:
        self.per_minute = per_minute
        self.size = size
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= self.size:
                self._seen.clear()
            seen = self._seen[key] = deque()
        while seen and now - seen[0] >= 60.0:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        return True
