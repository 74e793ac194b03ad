"""The Graph API client both Meta connectors use, over the bridge's shared aiohttp session.

Meta ships no Python SDK.  A call answers a JSON object or raises: the connector decides what
Meta's error means (`ErrorMapper`), the client makes sure the token never reaches an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.base import SendError

# Where Meta serves customers' files (Messenger's CDN, WhatsApp's lookaside host).
META_CDN_HOSTS = (".fbcdn.net", ".fbsbx.com", ".facebook.com", ".cdninstagram.com",
                  ".whatsapp.net")


@dataclass(frozen=True)
class GraphError:
    """Meta's error object, read defensively: any field may be missing."""

    status: int
    code: int | None
    subcode: int | None
    message: str
    title: str  # WhatsApp's `error_data.details` or `title`, the human part
    transient: bool

    @property
    def label(self) -> str:
        if self.subcode:
            return f"{self.code}/{self.subcode}"
        return str(self.code if self.code is not None else self.status)


def graph_error(status: int, data: Any, token: str = "",
                token_label: str = "[access token]") -> GraphError:
    """Meta's error body (or any body) -> a `GraphError`; the token is blanked from the text
    (Meta's message may quote it: "Malformed access token EAAB...")."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}

    def number(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    text = str(error.get("message") or f"HTTP {status}")
    details = error.get("error_data")
    detail = details.get("details") if isinstance(details, dict) else None
    title = str(detail or error.get("error_user_title") or error.get("title") or text)
    if token:
        text, title = text.replace(token, token_label), title.replace(token, token_label)
    return GraphError(status=status, code=number(error.get("code")),
                      subcode=number(error.get("error_subcode")), message=text[:500],
                      title=title[:500], transient=bool(error.get("is_transient")))


ErrorMapper = Callable[[GraphError], SendError]


class GraphClient:
    """`{base_url}/{version}/{path}` with the token, `request_timeout` per call."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, version: str,
                 timeout: float, what: str, token_label: str = "[access token]") -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.what = what  # "Messenger", "WhatsApp": for the errors
        self.token_label = token_label  # what a token quoted in an error becomes

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path}"

    async def call(self, method: str, path: str, token: str, errors: ErrorMapper, *,
                   params: Mapping[str, str] | None = None, json: Any = None,
                   data: aiohttp.FormData | None = None,
                   token_in_query: bool = False) -> dict[str, Any]:
        """One Graph call; the token as `Authorization: Bearer` (or `?access_token=`, as
        Meta's Send API documents it).  `SendError` from `errors` or for the network."""
        query = dict(params or {})
        headers: dict[str, str] = {}
        if token_in_query:
            query["access_token"] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.session.request(method, self.url(path), params=query, json=json,
                                            data=data, headers=headers,
                                            timeout=self.timeout) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                if resp.status == 200 and isinstance(body, dict) and "error" not in body:
                    return body
                raise errors(graph_error(resp.status, body, token, self.token_label))
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = repr(exc).replace(token, self.token_label) if token else repr(exc)
            raise SendError(f"{self.what} unreachable: {reason}", code="network",
                            retryable=True) from None
