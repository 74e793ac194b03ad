"""Files in the Slack stand-in: `add_file` (a file a user shared), the two-step upload
(files.getUploadURLExternal, the upload URL, files.completeUploadExternal), files.info and the
`url_private` download, which needs the bot token and `files:read` as Slack's does."""

from __future__ import annotations

import itertools
import json
import mimetypes
from typing import Any

from aiohttp import web

from bridge.standins.base import JSONDict
from bridge.standins.slack_events import TsClock
from bridge.standins.slack_socket import SocketModeStandin

DOWNLOAD_SCOPE = "files:read"  # url_private / url_private_download


def json_value(value: Any) -> Any:
    """Form-encoded clients send lists/dicts as JSON strings; decode those."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class SlackFiles(SocketModeStandin):
    """The file half of `SlackStandin` (which sets these attributes up)."""

    files: dict[str, JSONDict]
    messages: list[JSONDict]
    scopes: frozenset[str]
    team_id: str
    bot_user_id: str
    bot_id: str
    _by_key: dict[tuple[str, str], JSONDict]
    _clock: TsClock
    _file_seq: itertools.count[int]
    _auth: str | None

    def add_file(
        self, content: bytes, *, name: str = "file.bin", mimetype: str | None = None
    ) -> JSONDict:
        """Host a file (as if a user uploaded it); returns the file object for event payloads."""
        fid = f"F{next(self._file_seq):08d}"
        self.files[fid] = {"id": fid, "name": name, "title": name, "content": content}
        return self._file_object(self.files[fid], mimetype)

    async def _h_upload(self, request: web.Request) -> web.Response:
        fid = request.match_info["file_id"]
        if self._failures or self._delays:
            injection = await self._apply_injections("upload")
            if injection is not None:
                self._record("upload", {"file_id": fid}, request, injection.status, False)
                return web.Response(status=injection.status, text=injection.error or "error")
        entry = self.files.get(fid)
        if entry is None:
            self._record("upload", {"file_id": fid}, request, 404, False)
            return web.Response(status=404, text="file not found")
        content = b""
        if request.content_type == "multipart/form-data":
            for value in (await request.post()).values():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    break
        else:
            content = await request.read()
        entry["content"] = content
        self._record("upload", {"file_id": fid, "size": len(content)}, request)
        return web.Response(text=f"OK - {len(content)}")

    async def _h_download(self, request: web.Request) -> web.Response:
        if self._auth is not None and request.headers.get("Authorization") != self._auth:
            return web.Response(status=302, headers={"Location": "/?redir=login"})
        if DOWNLOAD_SCOPE not in self.scopes:
            return web.Response(status=403, text="missing_scope: files:read")
        entry = self.files.get(request.match_info["file_id"])
        if entry is None:
            return web.Response(status=404, text="file not found")
        mimetype = self._file_object(entry)["mimetype"]
        return web.Response(body=entry["content"], content_type=mimetype)

    def _m_get_upload_url(self, p: JSONDict) -> JSONDict:
        filename, length = p.get("filename"), p.get("length")
        if not filename or length is None:
            return {"ok": False, "error": "invalid_arguments"}
        fid = f"F{next(self._file_seq):08d}"
        self.files[fid] = {
            "id": fid,
            "name": filename,
            "title": filename,
            "content": b"",
            "length": int(length),
            "alt_txt": p.get("alt_txt"),
        }
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{fid}",
            "file_id": fid,
        }

    def _m_complete_upload(self, p: JSONDict) -> JSONDict:
        items = json_value(p.get("files") or "[]")
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        if any(not isinstance(i, dict) or i.get("id") not in self.files for i in items):
            return {"ok": False, "error": "file_not_found"}
        channel = p.get("channel_id") or None
        thread_ts = p.get("thread_ts") or None
        comment = p.get("initial_comment") or ""
        # Slack ignores `blocks` when there is an initial comment.
        blocks = None if comment else json_value(p.get("blocks") or None)
        if blocks is not None and not isinstance(blocks, list):
            return {"ok": False, "error": "invalid_blocks"}
        out: list[JSONDict] = []
        for item in items:
            entry = self.files[item["id"]]
            entry.update(
                title=item.get("title") or entry["name"],
                channel=channel,
                thread_ts=thread_ts,
                initial_comment=comment,
                completed=True,
            )
            out.append(self._file_object(entry))
        if channel:
            ts = self._clock.next()
            stored: JSONDict = {
                "channel": channel,
                "thread_ts": thread_ts,
                "blocks": blocks,
                "type": "message",
                "subtype": "file_share",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "app_id": self.app_id,
                "team": self.team_id,
                "text": comment,
                "ts": ts,
                "files": out,
                "metadata": None,
                "username": None,
                "icon_url": None,
                "icon_emoji": None,
            }
            self.messages.append(stored)
            self._by_key[(channel, ts)] = stored
        return {"ok": True, "files": out}

    def _m_files_info(self, p: JSONDict) -> JSONDict:
        entry = self.files.get(p.get("file") or "")
        if entry is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._file_object(entry)}

    def _file_object(self, entry: JSONDict, mimetype: str | None = None) -> JSONDict:
        name: str = entry["name"]
        mimetype = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        url = f"http://127.0.0.1:{self._port}/files-pri/{entry['id']}/{name}"
        return {
            "id": entry["id"],
            "name": name,
            "title": entry["title"],
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "size": len(entry["content"]),
            "user": self.bot_user_id,
            "url_private": url,
            "url_private_download": url,
            "permalink": f"https://standin.slack.com/files/{self.bot_user_id}/{entry['id']}",
        }
