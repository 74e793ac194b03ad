"""Files in the web chat: a visitor's upload (kept in the connector's state until the core has
fetched it for Slack) and an agent's file (kept there and served to the page by an
unguessable link)."""

from __future__ import annotations

import base64
import json
import secrets

from aiohttp import web

from connectors.base import StateAPI, TooLarge, UnsupportedMedia

MAGIC = {"image/png": (b"\x89PNG",), "image/jpeg": (b"\xff\xd8\xff",),
         "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",),
         "application/pdf": (b"%PDF-",)}


def kind_of(mime: str) -> str:
    return "photo" if mime.startswith("image/") else "document"


def check_type(mime: str, data: bytes, allowed: list[str]) -> None:
    """415 unless `mime` is allowed and the bytes look like it (for the types with a magic
    number; text/plain must be UTF-8)."""
    if mime not in allowed:
        raise UnsupportedMedia(f"files of type {mime or 'unknown'} are not accepted here")
    magic = MAGIC.get(mime)
    if magic is not None and not data.startswith(magic):
        raise UnsupportedMedia(f"the file is not a {mime} file")
    if mime == "text/plain":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsupportedMedia("a text file must be UTF-8") from exc


async def read_upload(request: web.Request, max_bytes: int) -> bytes:
    """The body, streamed and capped (the app-wide body limit is for webhooks)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge()
    data = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > max_bytes:
            raise TooLarge()
    return bytes(data)


class FileShelf:
    def __init__(self, state: StateAPI) -> None:
        self.state = state

    async def put(self, name: str, mime: str, data: bytes) -> str:
        key = secrets.token_urlsafe(24)
        await self.state.set(f"file:{key}", json.dumps(
            {"name": name, "type": mime, "data": base64.b64encode(data).decode()}))
        return key

    async def get(self, key: str) -> tuple[str, str, bytes] | None:
        raw = await self.state.get(f"file:{key}") if 20 <= len(key) <= 40 else None
        if not raw:
            return None
        found = json.loads(raw)
        return str(found["name"]), str(found["type"]), base64.b64decode(found["data"])
