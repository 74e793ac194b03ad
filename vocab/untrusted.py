"""The rules for input from outside, one per kind, so no handler invents its own.

- Text: `clean_text` gives what every store accepts (no lone surrogates, no NUL or other
  control characters but tab and newlines); the vocabulary's inbound models apply it to every
  string they are built with, so a parser cannot forget it.
- JSON: `load_json` refuses bodies nested deeper than `MAX_JSON_DEPTH` before decoding them
  (the standard decoder recurses, and a deep body would raise `RecursionError` anywhere).
- Numbers: `parse_id` reads an id an agent typed or a button carried, in the range every
  store's integer columns hold, or None.
- Hosts: `HostRule` says whether a URL may be fetched (and whether credentials may go with it).

Each raises `ValueError` (or returns None) for what it refuses; never another exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_JSON_DEPTH = 64  # far more than any platform's payload nests
MAX_ID = 2**63 - 1  # BIGINT / SQLite INTEGER
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,19}")


def clean_text(text: str) -> str:
    """Text any store takes: lone surrogates (JSON may escape one, `\\ud800`; raw 8-bit mail
    headers decode to them) become "?", NUL and other control characters are removed."""
    if text.isascii():
        return _CONTROL.sub("", text) if _CONTROL.search(text) else text
    return _CONTROL.sub("", text.encode("utf-8", "replace").decode("utf-8"))


def clean_strings(data: Any) -> Any:
    """Every string in a decoded JSON value through `clean_text` (iteratively, in place for
    containers; keys too).  Returns the cleaned value."""
    if isinstance(data, str):
        return clean_text(data)
    stack = [data] if isinstance(data, (dict, list)) else []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                if isinstance(value, str):
                    value = clean_text(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
                if isinstance(key, str) and (clean := clean_text(key)) != key:
                    del node[key]
                    key = clean
                node[key] = value
        else:
            for i, value in enumerate(node):
                if isinstance(value, str):
                    node[i] = clean_text(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
    return data


def json_depth(raw: bytes) -> int:
    """How deep `raw` nests arrays and objects (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return raw.count(b"[") + raw.count(b"{")  # an upper bound, cheap
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def load_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON from outside with a depth limit and cleaned strings; `ValueError` for
    anything that is not (bad UTF-8 included)."""
    scanned = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    if json_depth(scanned) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth}")
    try:
        value = json.loads(raw)
    except RecursionError as exc:  # not reachable after the depth check; kept total
        raise ValueError("JSON nested too deep") from exc
    return clean_strings(value)


def parse_id(text: object, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """A positive id from untrusted text ("42"), or None: not digits, or out of range."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if low <= text <= high else None
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


@dataclass(frozen=True)
class HostRule:
    """Where one platform's media may be fetched from.

    `hosts`: hostnames over HTTPS on the default port ("files.slack.com"), or a suffix
    starting with a dot (".fbcdn.net") for a CDN's many hosts.  `origins`: exact
    scheme://host:port of configured base URLs (the platform's API as configured, so a local
    stand-in works).  `credential_hosts`: the only hosts (or origins) credentials may go to.
    """

    hosts: frozenset[str]
    origins: frozenset[str] = frozenset()
    credential_hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, hosts: Iterable[str], base_urls: Iterable[str] = (),
           credentials: Iterable[str] = ()) -> HostRule:
        return cls(frozenset(h.lower() for h in hosts),
                   frozenset(o for o in (origin(u) for u in base_urls) if o),
                   frozenset(credentials))

    def allows(self, url: str) -> bool:
        found = origin(url)
        if found is None:
            return False
        if found in self.origins:
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or _port(parts) not in (None, 443):
            return False
        return any(host == h or (h.startswith(".") and host.endswith(h)) for h in self.hosts)

    def with_credentials(self, url: str) -> bool:
        """Whether this URL may receive the platform's credentials."""
        if not self.allows(url):
            return False
        found = origin(url)
        host = (urlsplit(url).hostname or "").lower()
        return found in self.credential_hosts or host in self.credential_hosts


def _port(parts: Any) -> int | None:
    try:
        port = parts.port
    except ValueError:
        return -1
    return port if isinstance(port, int) else None


def origin(url: str) -> str | None:
    """scheme://host:port of an HTTP(S) URL (the default port written out), or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = _port(parts)
    if port == -1:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"
